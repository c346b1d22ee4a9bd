#!/bin/bash
# prometheus.sh: prints the path of a static prometheus binary of the version the addon is tested with
# (deploy/addons/prometheus), building it from the Go module proxy into a cache directory the first
# time (about 6 min on 2 cores; nothing is downloaded from anywhere else). `npm run images -- prometheus`
# puts it in the weft/prometheus image, for clusters that pull no image (kube-local).
#
# Why not Debian's prometheus package: Debian builds it without Kubernetes service discovery
# (its NEWS.Debian: "Kubernetes support has been completely removed"), and the addon finds what to
# scrape with kubernetes_sd_configs. Built here with only that discovery (tags remove_all_sd,
# enable_kubernetes_sd; file and http discovery are always in) and without the web UI's assets
# (upstream embeds them from a JavaScript build): the HTTP API is all there.
#   WEFT_PROMETHEUS_VERSION  the module version of github.com/prometheus/prometheus (v0.316.0 is
#                            Prometheus 3.16.0: v0.3MM.P is 3.MM.P)
#   WEFT_CACHE_DIR           where the binary and Go's caches go (default: ${XDG_CACHE_HOME:-~/.cache}/weft)
# Exit 3 (nothing printed on stdout) when there is no `go` on PATH.
set -euo pipefail
VERSION=${WEFT_PROMETHEUS_VERSION:-v0.316.0}
if [[ ! $VERSION =~ ^v0\.3([0-9][0-9])\.([0-9]+)$ ]]; then
  echo "prometheus.sh: WEFT_PROMETHEUS_VERSION must be a module version v0.3MM.P (Prometheus 3.MM.P), not $VERSION" >&2
  exit 2
fi
RELEASE=3.$((10#${BASH_REMATCH[1]})).${BASH_REMATCH[2]}
CACHE=${WEFT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/weft}
DIR=$CACHE/prometheus/$VERSION
if [ -x "$DIR/prometheus" ]; then echo "$DIR/prometheus"; exit 0; fi
if ! command -v go >/dev/null; then
  echo "prometheus.sh: no go on PATH: install Go 1.26+, or set PROMETHEUS_BIN to a static prometheus $RELEASE built with Kubernetes discovery" >&2
  exit 3
fi
mkdir -p "$DIR"
exec 9>"$DIR.lock"
flock 9 # two builds may ask at once: one builds, the other waits and reuses it
if [ ! -x "$DIR/prometheus" ]; then
  echo "prometheus.sh: building prometheus $RELEASE ($VERSION) from the Go module proxy into $DIR" >&2
  # -trimpath and no build date or user: the same toolchain gives the same bytes
  GOBIN=$DIR GOFLAGS=-mod=mod GOCACHE=${GOCACHE:-$CACHE/go/cache} GOMODCACHE=${GOMODCACHE:-$CACHE/go/mod} CGO_ENABLED=0 \
    go install -trimpath -tags remove_all_sd,enable_kubernetes_sd \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=$RELEASE" \
    "github.com/prometheus/prometheus/cmd/prometheus@$VERSION" >&2
fi
echo "$DIR/prometheus"
