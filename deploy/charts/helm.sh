#!/bin/bash
# helm.sh: prints the path of a helm binary of the version the charts are tested with, building it
# from the Go module proxy into a cache directory the first time (about 1-3 min on 2 cores; nothing
# is downloaded from anywhere else). The tests call it; users with their own helm need not.
#   WEFT_HELM_VERSION  helm's module version (default below)
#   WEFT_CACHE_DIR     where the binary and Go's caches go (default: ${XDG_CACHE_HOME:-~/.cache}/weft)
# Exit 3 (nothing printed on stdout) when there is no `go` on PATH.
set -euo pipefail
VERSION=${WEFT_HELM_VERSION:-v4.3.2}
MAJOR=${VERSION%%.*}
CACHE=${WEFT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/weft}
DIR=$CACHE/helm/$VERSION
if [ -x "$DIR/helm" ]; then echo "$DIR/helm"; exit 0; fi
if ! command -v go >/dev/null; then
  echo "helm.sh: no go on PATH: install Go 1.26+ (apt-get install -y golang-go, if Debian's is new enough), or put helm $VERSION on PATH" >&2
  exit 3
fi
mkdir -p "$DIR"
exec 9>"$DIR.lock"
flock 9 # two test projects may ask at once: one builds, the other waits and reuses it
if [ ! -x "$DIR/helm" ]; then
  echo "helm.sh: building helm $VERSION from the Go module proxy into $DIR" >&2
  GOBIN=$DIR GOFLAGS=-mod=mod GOCACHE=${GOCACHE:-$CACHE/go/cache} GOMODCACHE=${GOMODCACHE:-$CACHE/go/mod} CGO_ENABLED=0 \
    go install "helm.sh/helm/$MAJOR/cmd/helm@$VERSION" >&2
fi
echo "$DIR/helm"
