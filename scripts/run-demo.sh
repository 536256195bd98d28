#!/usr/bin/env bash
# `make run`: two demo upstreams on 127.0.0.1:9001 and :9002, and Altair on :9777
# with examples/altair.yaml. Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

bin/demo-upstream -listen 127.0.0.1:9001 -name demo-1 & pids+=($!)
bin/demo-upstream -listen 127.0.0.1:9002 -name demo-2 & pids+=($!)

cat <<MSG
Altair on http://localhost:9777 — try:
  curl -s localhost:9777/api/hello          # prefix route, prefix stripped, round-robin over 2 backends
  curl -s localhost:9777/users/42           # path parameter, rewritten to /profiles/42
  curl -si localhost:9777/cached/bytes/64?max_age=60 | grep X-Cache   # MISS, then HIT
  curl -s localhost:9777/health             # gateway and backend health
  curl -s localhost:9777/stats              # counters, breaker states
  bin/altair explain -c examples/altair.yaml GET http://localhost:9777/users/42
MSG
bin/altair run -c examples/altair.yaml & pids+=($!)
wait "${pids[2]}"
