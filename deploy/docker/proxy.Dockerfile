# weft/proxy: weft-proxy (the sidecar), weft-ingress (gateways, command [weft-ingress]) and
# weft-iptables (the istio-init container, command [weft-iptables], run as root with NET_ADMIN).
ARG BASE=weft/base:0.1.0
FROM ${BASE}
USER 1337:1337
EXPOSE 15001 15006 15020 15021 15090
ENTRYPOINT ["/usr/local/bin/weft-proxy"]
