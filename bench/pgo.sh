#!/usr/bin/env bash
# bench/pgo.sh: refresh cmd/altair/default.pgo, the CPU profile the Go
# toolchain builds altair with (profile-guided optimisation: `go build`
# picks it up by itself). The profile is of the plain proxy under the load
# `make bench` puts on it: a demo upstream and altair pinned to one CPU,
# wrk on the other, 64 connections, 1 KiB answers, all on loopback.
#
# Usage: bench/pgo.sh            (or: make pgo)
# Env:   SECONDS_PROFILED=30 WRK_CPU=0 SERVER_CPU=1
set -euo pipefail
export LC_ALL=C

SECONDS_PROFILED=${SECONDS_PROFILED:-30}
WRK_CPU=${WRK_CPU:-0}
SERVER_CPU=${SERVER_CPU:-1}
[[ $SECONDS_PROFILED =~ ^[0-9]+$ ]] && ((SECONDS_PROFILED >= 5)) || {
	echo "pgo.sh: SECONDS_PROFILED=$SECONDS_PROFILED: want a whole number of seconds, at least 5" >&2
	exit 2
}

readonly ALTAIR_ADDR=127.0.0.1:18180
readonly BACKEND_ADDR=127.0.0.1:18181
readonly PPROF_ADDR=127.0.0.1:18189

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly root
say() { echo "pgo.sh: $*" >&2; }

for tool in wrk taskset curl; do
	command -v "$tool" >/dev/null && continue
	pkg=$tool
	[[ $tool == taskset ]] && pkg=util-linux
	say "installing $pkg"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >/dev/null 2>&1 ||
		{ apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >/dev/null; }
done

tmp=$(mktemp -d)
pids=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

say "building (altair with the pprof endpoint, and the demo upstream)"
# -pgo=off: the profile is of code as written, not of the last profile's
# optimisations.
(cd "$root" && CGO_ENABLED=0 go build -pgo=off -tags pprof -o "$tmp/altair" ./cmd/altair)
(cd "$root" && CGO_ENABLED=0 go build -o "$tmp/demo-upstream" ./cmd/demo-upstream)

cat >"$tmp/altair.yaml" <<YAML
server:
  listen: "$ALTAIR_ADDR"
log:
  level: warn
  access: { disabled: true }
edge:
  rate_limit: { disabled: true }
  ddos: { disabled: true }
routes:
  - name: bench
    match: { prefix: / }
    backends: [ { url: "http://$BACKEND_ADDR" } ]
defaults:
  health_check: { disabled: true }
YAML

taskset -c "$SERVER_CPU" env GOMAXPROCS=1 "$tmp/demo-upstream" -listen "$BACKEND_ADDR" -name pgo >"$tmp/upstream.log" 2>&1 &
pids+=("$!")
taskset -c "$SERVER_CPU" env -i PATH="$PATH" GOMAXPROCS=1 ALTAIR_PPROF_ADDR="$PPROF_ADDR" \
	"$tmp/altair" run -c "$tmp/altair.yaml" >"$tmp/altair.log" 2>&1 &
pids+=("$!")
for ((i = 0; i < 100; i++)); do
	curl -fsS -o /dev/null "http://$ALTAIR_ADDR/bytes/1024" 2>/dev/null &&
		curl -fsS -o /dev/null "http://$PPROF_ADDR/debug/pprof/" 2>/dev/null && break
	sleep 0.1
done
((i < 100)) || { say "altair did not come up:"; cat "$tmp/altair.log" >&2; exit 1; }

say "loading altair for $((SECONDS_PROFILED + 5))s, profiling ${SECONDS_PROFILED}s of it"
taskset -c "$WRK_CPU" wrk -t1 -c64 -d"$((SECONDS_PROFILED + 5))s" "http://$ALTAIR_ADDR/bytes/1024" >"$tmp/wrk.txt" &
wrk_pid=$!
pids+=("$wrk_pid")
sleep 2
curl -fsS -o "$tmp/cpu.pprof" "http://$PPROF_ADDR/debug/pprof/profile?seconds=$SECONDS_PROFILED"
wait "$wrk_pid"
grep -E 'Requests/sec' "$tmp/wrk.txt" >&2 || true
[[ -s $tmp/cpu.pprof ]] || { say "empty profile"; exit 1; }
cp "$tmp/cpu.pprof" "$root/cmd/altair/default.pgo"
say "wrote cmd/altair/default.pgo ($(wc -c <"$root/cmd/altair/default.pgo") bytes)"
