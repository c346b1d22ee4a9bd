# weft/bookinfo: the BookInfo services; choose one with env SERVICE (productpage, details, reviews,
# ratings) and SERVICE_VERSION.
ARG BASE=weft/base:0.1.0
FROM ${BASE}
USER 1000:1000
ENV PORT=9080
EXPOSE 9080
ENTRYPOINT ["/usr/local/bin/bookinfo"]
