# weft/weftd: the control plane. See Dockerfile.base for how to build.
ARG BASE=weft/base:0.1.0
FROM ${BASE}
USER 1337:1337
EXPOSE 15010 15012 15014 15017
ENTRYPOINT ["/usr/local/bin/weftd"]
