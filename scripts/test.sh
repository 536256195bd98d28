#!/usr/bin/env bash
# Runs the whole test suite with the race detector. Installs what it needs first,
# so it works on a fresh machine and in CI.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# -race needs cgo and a C compiler.
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc libc6-dev)
# The terminal dashboard's test (cmd/altair) runs altair inside tmux and reads the screen.
command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)
# The monitor page's browser test (cmd/altair) drives Debian's headless chromium.
[ -n "${ALTAIR_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# Shared state (internal/cluster, internal/edge, internal/cache, cmd/altair) is
# tested against a real redis-server on a free loopback port; there is no mocked
# Redis.
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
# deploy/'s tests check the TLS edge's config with nginx -t.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "test.sh: installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${need_apt[@]}" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"; }
fi

export CGO_ENABLED=1
# Tests build without cmd/altair/default.pgo: profile-guided optimisation
# changes speed, not behaviour, and would compile everything a second time.
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-pgo=off"
go vet ./...
go test -race -count=1 -timeout 8m ./...

# The deployment files (Dockerfile, compose, Kubernetes, Grafana, Prometheus,
# nginx): a module of their own, so the gateway's go.mod stays free of the
# libraries that parse them.
(cd deploy && go vet ./... && go test -count=1 ./...)

# Every platform we release for still compiles (the tests above run on this
# one only).
scripts/release.sh check
