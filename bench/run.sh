#!/usr/bin/env bash
# bench/run.sh: load-test the direct backend, Altair and nginx (both as plain
# reverse proxies in front of the same backend) with wrk, in one run of
# interleaved rounds, and quote each proxy against the direct backend.
#
# Usage: bench/run.sh            (or: make bench)
# Env:   CONNS=64 THREADS=1 DURATION=10s ROUNDS=3 SIZE=1024 WARMUP=3s
#        TARGETS="direct altair altair-cached altair-observed altair-auth altair-plugin-go altair-wasm nginx nginx-same"
#        WRK_CPU=0 SERVER_CPU=1
#        (altair: the plain proxy, access log off like nginx's;
#        altair-cached: the same with the response cache on for the route, and
#        a cacheable answer (GET /bytes/SIZE?max_age=3600), so every measured
#        request is a hit served from memory;
#        altair-observed: the same with the access log on, written to a file,
#        and tracing on at sample_ratio 0;
#        altair-auth: Altair with a JWT verified on every request, rate
#        limiting and DDoS counting on, limits high enough never to refuse;
#        altair-plugin-go: the plain proxy built with a compiled-in Go plugin
#        that does nothing (bench/emptyplugin), listed in the route's plugins;
#        altair-wasm: the plain proxy with the built-in wasm plugin running the
#        empty http-wasm guest (examples/plugins/wasm/empty) on the route;
#        nginx: a plain reverse proxy that adds X-Forwarded-For;
#        nginx-same: nginx doing the header work Altair does by default, the
#        same forwarding headers to the backend and the same security and
#        request-id headers to the client, checked against altair's at start)
#        Opt-in, not in the default TARGETS: altair-tls nginx-tls (Altair with
#        server.tls and nginx with listen ... ssl http2, the same self-signed
#        certificate, in front of the same backend), measured apart from the
#        HTTP/1.1 rounds: TLS handshakes/s (wrk over https with
#        Connection: close, for DURATION) and HTTP/2 multiplexed req/s
#        (h2load -c H2_CONNS -m H2_STREAMS -n H2_REQUESTS), e.g.
#        TARGETS="altair-tls nginx-tls" bench/run.sh
#        H2_CONNS=8 H2_STREAMS=32 H2_REQUESTS=100000 TLS_CONNS=16
#        ALTAIR_GOMAXPROCS=1 BACKEND_GOMAXPROCS=1
#        ALTAIR_BIN=path (a prebuilt altair instead of building ./cmd/altair)
# See bench/README.md for what is measured and how to read the ratios.
set -euo pipefail
export LC_ALL=C # decimal points and sort order must not depend on the locale

CONNS=${CONNS:-64}
THREADS=${THREADS:-1}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
SIZE=${SIZE:-1024}
WARMUP=${WARMUP:-3s}
TARGETS=${TARGETS:-direct altair altair-cached altair-observed altair-auth altair-plugin-go altair-wasm nginx nginx-same}
WRK_CPU=${WRK_CPU:-0}
SERVER_CPU=${SERVER_CPU:-1}
ALTAIR_GOMAXPROCS=${ALTAIR_GOMAXPROCS:-1}
BACKEND_GOMAXPROCS=${BACKEND_GOMAXPROCS:-1}
H2_CONNS=${H2_CONNS:-8}
H2_STREAMS=${H2_STREAMS:-32}
H2_REQUESTS=${H2_REQUESTS:-100000}
TLS_CONNS=${TLS_CONNS:-16}

readonly ALTAIR_ADDR=127.0.0.1:18080
readonly BACKEND_ADDR=127.0.0.1:18081
readonly NGINX_ADDR=127.0.0.1:18082
readonly ALTAIR_AUTH_ADDR=127.0.0.1:18083
readonly ALTAIR_OBSERVED_ADDR=127.0.0.1:18084
# altair-observed exports traces here. Nothing listens on it: at sample_ratio 0
# no span is recorded, so none is exported, and an export attempt would show as
# a "tracing: export failed" line in its log, which the script checks for.
readonly OTLP_ADDR=127.0.0.1:18085
readonly ALTAIR_CACHED_ADDR=127.0.0.1:18086
# The opt-in TLS targets (HTTPS, HTTP/2 and HTTP/1.1 by ALPN).
readonly ALTAIR_TLS_ADDR=127.0.0.1:18087
readonly NGINX_TLS_ADDR=127.0.0.1:18088
# The plugin targets: an empty compiled-in Go plugin, an empty wasm guest.
readonly ALTAIR_PLUGIN_GO_ADDR=127.0.0.1:18089
readonly ALTAIR_WASM_ADDR=127.0.0.1:18090
readonly NGINX_SAME_ADDR=127.0.0.1:18091
# The backend's answer for altair-cached says Cache-Control: public, max-age=
# this, so that it stays fresh for the whole run.
readonly CACHE_MAX_AGE=3600
# An HMAC secret for the altair-auth target, and a token signed with it below.
readonly JWT_SECRET_BENCH=bench-secret-bench-secret-bench-secret

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly root
readonly bin=$root/bench/.bin
readonly results=$root/bench/results
readonly path=/bytes/$SIZE
# altair-cached asks for the same bytes with a query that makes the backend
# send Cache-Control: public, max-age=CACHE_MAX_AGE (see cmd/demo-upstream).
readonly cached_path="$path?max_age=$CACHE_MAX_AGE"
started=$SECONDS
pids=()  # every process this script started, and only those
tmp=""

say() { printf '==> %s\n' "$*" >&2; }
die() {
	printf 'bench: %s\n' "$*" >&2
	exit 1
}

# cleanup stops the processes this script started (SIGTERM, then SIGKILL after
# 5s) and removes the temp dir. It never signals anything it did not start.
cleanup() {
	local pid i
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if [[ -n $tmp ]]; then
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- parameters -------------------------------------------------------------

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
for v in CONNS THREADS ROUNDS SIZE WRK_CPU SERVER_CPU ALTAIR_GOMAXPROCS BACKEND_GOMAXPROCS H2_CONNS H2_STREAMS H2_REQUESTS TLS_CONNS; do
	is_uint "${!v}" || die "$v=${!v}: want a non-negative integer"
done
((CONNS >= 1 && THREADS >= 1 && ROUNDS >= 1)) || die "CONNS, THREADS and ROUNDS must be at least 1"
((THREADS <= CONNS)) || die "THREADS=$THREADS exceeds CONNS=$CONNS (wrk needs a connection per thread)"
((H2_CONNS >= 1 && H2_STREAMS >= 1 && TLS_CONNS >= 1)) || die "H2_CONNS, H2_STREAMS and TLS_CONNS must be at least 1"
((H2_REQUESTS >= H2_CONNS)) || die "H2_REQUESTS=$H2_REQUESTS: want at least H2_CONNS=$H2_CONNS"
((SIZE <= 10485760)) || die "SIZE=$SIZE: the demo upstream serves at most 10485760 bytes"
[[ $DURATION =~ ^[0-9]+[smh]?$ ]] || die "DURATION=$DURATION: want wrk's format, such as 10s or 1m"
[[ $WARMUP =~ ^[0-9]+[smh]?$ ]] || die "WARMUP=$WARMUP: want wrk's format, such as 3s"
read -r -a all_targets <<<"$TARGETS"
((${#all_targets[@]} >= 1)) || die "TARGETS is empty"
targets=()     # loaded with wrk over HTTP/1.1 keep-alive, in rounds
tls_targets=() # the opt-in TLS targets: handshake rate and HTTP/2 throughput
for t in "${all_targets[@]}"; do
	case $t in
	direct | altair | altair-cached | altair-observed | altair-auth | altair-plugin-go | altair-wasm | nginx | nginx-same) targets+=("$t") ;;
	altair-tls | nginx-tls) tls_targets+=("$t") ;;
	*) die "TARGETS: unknown target '$t' (want direct, altair, altair-cached, altair-observed, altair-auth, altair-plugin-go, altair-wasm, nginx, nginx-same, altair-tls, nginx-tls)" ;;
	esac
done
has_target() { [[ " ${all_targets[*]} " == *" $1 "* ]]; }

# seconds converts a wrk duration (10s, 1m, 2h, 10) to seconds.
seconds() {
	local n=${1%[smh]}
	case $1 in
	*m) echo $((n * 60)) ;;
	*h) echo $((n * 3600)) ;;
	*) echo "$n" ;;
	esac
}

# --- tools ------------------------------------------------------------------

as_root() {
	if ((EUID == 0)); then
		"$@"
	elif command -v sudo >/dev/null; then
		sudo "$@"
	else
		die "need root (or sudo) to run: $*"
	fi
}

# apt_install PKG...: installs the first of the given alternatives that apt-get
# can install, running apt-get update only if no alternative installs as is.
apt_install() {
	command -v apt-get >/dev/null || die "apt-get not found; install one of: $*"
	local pkg log attempt
	log=$(mktemp)
	for attempt in 1 2; do
		for pkg in "$@"; do
			if as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >>"$log" 2>&1; then
				say "installed $pkg"
				rm -f "$log"
				return 0
			fi
		done
		if ((attempt == 1)); then
			say "apt-get install $* failed; running apt-get update"
			as_root apt-get update -q >>"$log" 2>&1 || true
		fi
	done
	tail -n 20 "$log" >&2
	rm -f "$log"
	die "could not install any of: $*"
}

find_nginx() { command -v nginx || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; } || true; }

command -v taskset >/dev/null || apt_install util-linux
command -v wrk >/dev/null || apt_install wrk
if ((${#tls_targets[@]} > 0)); then
	command -v openssl >/dev/null || apt_install openssl
	command -v h2load >/dev/null || apt_install nghttp2-client
	command -v curl >/dev/null || apt_install curl
fi
nginx_bin=""
if has_target nginx || has_target nginx-same || has_target nginx-tls; then
	nginx_bin=$(find_nginx)
	if [[ -z $nginx_bin ]]; then
		apt_install nginx-light nginx
		nginx_bin=$(find_nginx)
	fi
	[[ -n $nginx_bin ]] || die "nginx is installed but not found in PATH or /usr/sbin"
fi
command -v go >/dev/null || die "go not found in PATH"

ncpu=$(nproc)
((WRK_CPU < ncpu && SERVER_CPU < ncpu)) || die "WRK_CPU=$WRK_CPU and SERVER_CPU=$SERVER_CPU need CPUs that exist (this machine has $ncpu)"
((WRK_CPU != SERVER_CPU)) || say "warning: wrk and the servers share CPU $WRK_CPU; numbers will be low and noisy"

# --- build ------------------------------------------------------------------

mkdir -p "$bin" "$results"
say "building demo-upstream"
(cd "$root" && CGO_ENABLED=0 go build -o "$bin/demo-upstream" ./cmd/demo-upstream)
altair_bin=$bin/altair
wants_altair() { has_target altair || has_target altair-cached || has_target altair-observed || has_target altair-auth || has_target altair-wasm || has_target altair-tls; }
if wants_altair && [[ -n ${ALTAIR_BIN:-} ]]; then
	altair_bin=$ALTAIR_BIN
	[[ -x $altair_bin ]] || die "ALTAIR_BIN=$altair_bin is not an executable file"
	say "using prebuilt altair: $altair_bin"
elif wants_altair; then
	say "building altair"
	(cd "$root" && CGO_ENABLED=0 go build -o "$altair_bin" ./cmd/altair) ||
		die "cmd/altair does not build (errors above); to benchmark without it: TARGETS=\"direct nginx\" $0"
fi
# altair-plugin-go is a custom binary, plugin.Main with one compiled-in plugin
# (bench/emptyplugin), built from the work tree even when ALTAIR_BIN is set.
plugin_go_bin=$bin/altair-plugin-go
if has_target altair-plugin-go; then
	say "building altair-plugin-go (bench/emptyplugin)"
	(cd "$root" && CGO_ENABLED=0 go build -o "$plugin_go_bin" ./bench/emptyplugin) ||
		die "bench/emptyplugin does not build (errors above)"
fi

# --- servers ----------------------------------------------------------------

tmp=$(mktemp -d "${TMPDIR:-/tmp}/altair-bench.XXXXXX")

# http_get ADDR PATH prints the raw response to one HTTP/1.0 GET, using only
# bash's /dev/tcp so that the script needs no HTTP client.
http_get() {
	(
		exec 2>/dev/null # a refused connection is an answer here, not an error to show
		exec 3<>"/dev/tcp/${1%:*}/${1##*:}" || exit 1
		# AUTH_HEADER, when set, is sent too (the altair-auth target).
		printf 'GET %s HTTP/1.0\r\nHost: %s\r\n%s\r\n' "$2" "$1" "${AUTH_HEADER:+$AUTH_HEADER$'\r\n'}" >&3
		timeout 5 cat <&3
	)
}

# fetch ADDR PATH prints "STATUS BODY_LENGTH X_CACHE" for one GET; X_CACHE is
# the X-Cache header's value, or - when there is none.
fetch() {
	local resp status_line head body code line xcache=-
	# The . keeps $( ) from eating the body's trailing newlines.
	resp=$(http_get "$1" "$2" && printf .) || return 1
	status_line=${resp%%$'\r\n'*}
	head=${resp%%$'\r\n\r\n'*}
	body=${resp#*$'\r\n\r\n'}
	body=${body%.}
	read -r _ code _ <<<"$status_line"
	while IFS= read -r line; do
		line=${line%$'\r'}
		if [[ ${line,,} == x-cache:* ]]; then
			xcache=${line#*:}
			xcache=${xcache# }
		fi
	done <<<"$head"
	printf '%s %s %s\n' "${code:-0}" "${#body}" "${xcache:--}"
}

listening() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }

# start NAME CMD...: starts CMD in the background, pinned to SERVER_CPU, with its
# output in $tmp/NAME.log, and records its PID. taskset and env exec the command,
# so the PID recorded is the server's own.
start() {
	local name=$1
	shift
	taskset -c "$SERVER_CPU" "$@" >"$tmp/$name.log" 2>&1 &
	pids+=("$!")
	last_pid=$!
}

# path_of TARGET prints the path wrk loads TARGET with.
path_of() {
	if [[ $1 == altair-cached ]]; then
		echo "$cached_path"
	else
		echo "$path"
	fi
}

# wait_ready NAME PID ADDR [PATH] waits until GET PATH ($path by default) on ADDR
# returns 200 and exactly SIZE bytes, so every target is known to serve the same
# thing before it is loaded. It leaves the last answer's X-Cache value (or -)
# in ready_xcache.
wait_ready() {
	local name=$1 pid=$2 addr=$3 p=${4:-$path} got="" want="200 $SIZE" i
	for ((i = 0; i < 100; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 30 "$tmp/$name.log" >&2
			die "$name exited during start-up (log above)"
		fi
		if got=$(fetch "$addr" "$p") && [[ ${got% *} == "$want" ]]; then
			ready_xcache=${got##* }
			return 0
		fi
		sleep 0.1
	done
	tail -n 30 "$tmp/$name.log" >&2
	die "$name on $addr not ready after 10s: GET $p gave '${got:-no answer}', want '$want'"
}

addrs=("$BACKEND_ADDR")
has_target altair && addrs+=("$ALTAIR_ADDR")
has_target altair-cached && addrs+=("$ALTAIR_CACHED_ADDR")
has_target altair-auth && addrs+=("$ALTAIR_AUTH_ADDR")
has_target altair-plugin-go && addrs+=("$ALTAIR_PLUGIN_GO_ADDR")
has_target altair-wasm && addrs+=("$ALTAIR_WASM_ADDR")
has_target altair-observed && addrs+=("$ALTAIR_OBSERVED_ADDR" "$OTLP_ADDR")
has_target nginx && addrs+=("$NGINX_ADDR")
has_target nginx-same && addrs+=("$NGINX_SAME_ADDR")
has_target altair-tls && addrs+=("$ALTAIR_TLS_ADDR")
has_target nginx-tls && addrs+=("$NGINX_TLS_ADDR")
for addr in "${addrs[@]}"; do
	! listening "$addr" || die "$addr is already in use; stop whatever listens there first"
done

# The servers get a clean environment: Altair reads its settings from the
# environment too (GATEWAY_PORT, LOG_LEVEL, ENABLE_CACHING, ...), and the
# benchmark must not depend on the caller's shell.
say "starting demo-upstream on $BACKEND_ADDR (CPU $SERVER_CPU, GOMAXPROCS=$BACKEND_GOMAXPROCS)"
start backend env -i PATH="$PATH" GOMAXPROCS="$BACKEND_GOMAXPROCS" \
	"$bin/demo-upstream" -listen "$BACKEND_ADDR" -name bench-backend
wait_ready backend "$last_pid" "$BACKEND_ADDR"
declare -A pid_of # each target's own server process (nginx: its master)
pid_of[direct]=$last_pid
backend_pid=$last_pid

# plain_config ADDR ACCESS [EXTRA [ROUTE_EXTRA]] prints the plain proxy's config:
# listening on ADDR, the access-log setting ACCESS, EXTRA (more top-level YAML)
# appended and ROUTE_EXTRA (more keys of the route, indented by four spaces)
# added to the route.
plain_config() {
	cat <<EOF
server:
  listen: "$1"
log:
  level: warn
  access: $2
# The plain proxy: one load generator on 127.0.0.1 would trip the default
# per-client rate limit and DDoS threshold, so both are off here.
edge:
  rate_limit: { disabled: true }
  ddos: { disabled: true }
routes:
  - name: bench
    match:
      prefix: /
    backends:
      - url: http://$BACKEND_ADDR
${4:-}
defaults:
  health_check:
    disabled: true
${3:-}
EOF
}

if has_target altair; then
	# No access log, as nginx runs with access_log off.
	plain_config "$ALTAIR_ADDR" "{ disabled: true }" >"$tmp/altair.yaml"
	say "starting altair on $ALTAIR_ADDR (CPU $SERVER_CPU, GOMAXPROCS=$ALTAIR_GOMAXPROCS)"
	start altair env -i PATH="$PATH" GOMAXPROCS="$ALTAIR_GOMAXPROCS" \
		"$altair_bin" run -c "$tmp/altair.yaml"
	wait_ready altair "$last_pid" "$ALTAIR_ADDR"
	# The plain proxy must not cache: altair-cached / altair compares the two.
	[[ $ready_xcache == - ]] ||
		die "altair answered GET $path with X-Cache: $ready_xcache; the plain proxy must not cache"
	pid_of[altair]=$last_pid
fi

if has_target altair-cached; then
	# The plain proxy (access log off too) with the response cache on for its
	# route, loaded with a path whose answer the backend marks cacheable: after
	# the readiness probe's miss, every request is a fresh hit from memory.
	plain_config "$ALTAIR_CACHED_ADDR" "{ disabled: true }" "" "    cache: { enabled: true }" >"$tmp/altair-cached.yaml"
	say "starting altair-cached on $ALTAIR_CACHED_ADDR (CPU $SERVER_CPU, GOMAXPROCS=$ALTAIR_GOMAXPROCS; route cache on, GET $cached_path)"
	start altair-cached env -i PATH="$PATH" GOMAXPROCS="$ALTAIR_GOMAXPROCS" \
		"$altair_bin" run -c "$tmp/altair-cached.yaml"
	wait_ready altair-cached "$last_pid" "$ALTAIR_CACHED_ADDR" "$cached_path"
	pid_of[altair-cached]=$last_pid
	# The probe above stored the answer (X-Cache: MISS); the next request must
	# be served from memory, or the target measures the proxy, not the cache.
	first_xcache=$ready_xcache got=""
	for ((i = 0; i < 20; i++)); do
		got=$(fetch "$ALTAIR_CACHED_ADDR" "$cached_path") || got=""
		[[ $got == "200 $SIZE HIT" ]] && break
		sleep 0.1
	done
	[[ $got == "200 $SIZE HIT" ]] ||
		die "altair-cached does not serve GET $cached_path from its cache: first answer X-Cache: $first_xcache, then '${got:-no answer}' (want '200 $SIZE HIT'); its log ends: $(tail -n 5 "$tmp/altair-cached.log")"
	say "altair-cached: first answer X-Cache: $first_xcache, then HIT"
fi

if has_target altair-observed; then
	# The plain proxy with the observability a deployment would turn on: every
	# request in the access log (JSON, to stderr, which start sends to a file
	# in $tmp, as a deployment sends it to a file or a pipe) and tracing on
	# with sampling off. Metrics are counted by every Altair target alike.
	plain_config "$ALTAIR_OBSERVED_ADDR" "{ sample: 1 }" "# Nothing listens on OTLP_ADDR; at sample_ratio 0 nothing is exported.
tracing:
  enabled: true
  endpoint: http://$OTLP_ADDR
  sample_ratio: 0" >"$tmp/altair-observed.yaml"
	say "starting altair-observed on $ALTAIR_OBSERVED_ADDR (CPU $SERVER_CPU, GOMAXPROCS=$ALTAIR_GOMAXPROCS; access log to $tmp/altair-observed.log, traces to $OTLP_ADDR at sample_ratio 0)"
	start altair-observed env -i PATH="$PATH" GOMAXPROCS="$ALTAIR_GOMAXPROCS" \
		"$altair_bin" run -c "$tmp/altair-observed.yaml"
	wait_ready altair-observed "$last_pid" "$ALTAIR_OBSERVED_ADDR"
	pid_of[altair-observed]=$last_pid
	# The readiness probe must have left an access line, or the target would
	# measure nothing more than altair does.
	for ((i = 0; i < 30; i++)); do
		grep -q '"msg":"access"' "$tmp/altair-observed.log" && break
		sleep 0.1
	done
	grep -q '"msg":"access"' "$tmp/altair-observed.log" ||
		die "altair-observed wrote no access line for its readiness probe (log: $tmp/altair-observed.log)"
fi

# b64url encodes stdin as unpadded base64url.
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
bench_token=""
if has_target altair-auth; then
	command -v openssl >/dev/null || apt_install openssl
	jwt_head=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
	jwt_body=$(printf '{"sub":"bench","exp":%d}' $(($(date +%s) + 86400)) | b64url)
	jwt_sig=$(printf '%s.%s' "$jwt_head" "$jwt_body" | openssl dgst -sha256 -hmac "$JWT_SECRET_BENCH" -binary | b64url)
	bench_token="$jwt_head.$jwt_body.$jwt_sig"
	cat >"$tmp/altair-auth.yaml" <<EOF
server:
  listen: "$ALTAIR_AUTH_ADDR"
log:
  level: warn
  access: { disabled: true } # as the plain altair target, so the ratio is the chain's alone
# The whole edge and auth chain on every request, with limits high enough
# that the single load generator is never refused.
edge:
  rate_limit: { requests_per_second: 100000000, burst: 100000000 }
  ddos: { threshold: 1000000000, block_duration: 1s }
auth:
  jwt:
    secret: "$JWT_SECRET_BENCH"
routes:
  - name: bench
    match:
      prefix: /
    require_auth: true
    backends:
      - url: http://$BACKEND_ADDR
defaults:
  health_check:
    disabled: true
EOF
	say "starting altair-auth on $ALTAIR_AUTH_ADDR (CPU $SERVER_CPU, GOMAXPROCS=$ALTAIR_GOMAXPROCS)"
	start altair-auth env -i PATH="$PATH" GOMAXPROCS="$ALTAIR_GOMAXPROCS" \
		"$altair_bin" run -c "$tmp/altair-auth.yaml"
	AUTH_HEADER="Authorization: Bearer $bench_token" wait_ready altair-auth "$last_pid" "$ALTAIR_AUTH_ADDR"
	pid_of[altair-auth]=$last_pid
fi

if has_target altair-plugin-go; then
	# The plain proxy with a compiled-in Go plugin that returns the next
	# handler as it is: what listing a plugin costs (the gateway's per-plugin
	# metrics and panic guard around it), with nothing of the plugin's own.
	plain_config "$ALTAIR_PLUGIN_GO_ADDR" "{ disabled: true }" "" "    plugins: [{name: empty}]" >"$tmp/altair-plugin-go.yaml"
	say "starting altair-plugin-go on $ALTAIR_PLUGIN_GO_ADDR (CPU $SERVER_CPU, GOMAXPROCS=$ALTAIR_GOMAXPROCS; the empty Go plugin on the route)"
	start altair-plugin-go env -i PATH="$PATH" GOMAXPROCS="$ALTAIR_GOMAXPROCS" \
		"$plugin_go_bin" run -c "$tmp/altair-plugin-go.yaml"
	wait_ready altair-plugin-go "$last_pid" "$ALTAIR_PLUGIN_GO_ADDR"
	pid_of[altair-plugin-go]=$last_pid
fi

if has_target altair-wasm; then
	# The plain proxy with the built-in wasm plugin running the empty http-wasm
	# guest, which passes every request on: what the WebAssembly host costs.
	say "building the empty wasm guest (examples/plugins/wasm/empty)"
	(cd "$root" && GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o "$tmp/empty.wasm" ./examples/plugins/wasm/empty) ||
		die "examples/plugins/wasm/empty does not build (errors above)"
	plain_config "$ALTAIR_WASM_ADDR" "{ disabled: true }" "" "    plugins: [{name: wasm, config: {path: \"$tmp/empty.wasm\"}}]" >"$tmp/altair-wasm.yaml"
	say "starting altair-wasm on $ALTAIR_WASM_ADDR (CPU $SERVER_CPU, GOMAXPROCS=$ALTAIR_GOMAXPROCS; the empty wasm guest on the route)"
	start altair-wasm env -i PATH="$PATH" GOMAXPROCS="$ALTAIR_GOMAXPROCS" \
		"$altair_bin" run -c "$tmp/altair-wasm.yaml"
	wait_ready altair-wasm "$last_pid" "$ALTAIR_WASM_ADDR"
	pid_of[altair-wasm]=$last_pid
fi

nginx_version=""
[[ -z $nginx_bin ]] || {
	nginx_version=$("$nginx_bin" -v 2>&1)
	nginx_version=${nginx_version#nginx version: }
}
nginx_user=""
if ((EUID == 0)); then
	nginx_user="user root;" # workers would otherwise drop to nobody, who cannot use $tmp
fi

# nginx_config NAME LISTEN [SERVER_EXTRA [LOCATION_EXTRA]] prints the config of
# an nginx named NAME (its pid file and temp paths in $tmp/NAME) listening with
# the directive LISTEN, SERVER_EXTRA (more directives, such as the certificate)
# in its server and LOCATION_EXTRA in its one location.
nginx_config() {
	cat <<EOF
$nginx_user
worker_processes 1;
pid $tmp/$1.pid;
error_log $tmp/$1-error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    default_type application/octet-stream;
    client_body_temp_path $tmp/$1/client_body;
    proxy_temp_path $tmp/$1/proxy;
    fastcgi_temp_path $tmp/$1/fastcgi;
    uwsgi_temp_path $tmp/$1/uwsgi;
    scgi_temp_path $tmp/$1/scgi;
    # Go servers put no cap on requests per keep-alive connection (HTTP/2
    # included); nginx's default of 1000 would make it, alone, reconnect every
    # 1000 requests.
    keepalive_requests 1000000;
    upstream backend {
        server $BACKEND_ADDR;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        $2
${3:-}
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # The forwarding header every proxy adds. Altair adds four more and
            # answers with more headers: nginx-same does that work too.
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
${4:-}
        }
    }
}
EOF
}

# header_names ADDR PATH WHICH prints, sorted and lower-cased, the names of the
# answer's header fields (WHICH=answer) or of the request fields the backend
# got (WHICH=request, PATH the demo upstream's echo) for one GET, leaving out
# those that differ between servers by nature: the date, the framing, the
# connection's, Server and the backend's X-Served-By. For a request it adds
# "host=asked" when the backend got the Host the client sent (ADDR), or
# "host=" and the Host it got.
header_names() {
	local resp body host
	resp=$(http_get "$1" "$2") || return 1
	if [[ $3 == answer ]]; then
		printf '%s\n' "${resp%%$'\r\n\r\n'*}" | tr -d '\r' | awk -F: 'NR > 1 && NF > 1 { print tolower($1) }'
	else
		# The echo's JSON: each request header is a key indented by four;
		# Host, which Go takes out of the header, is the "host" field.
		body=${resp#*$'\r\n\r\n'}
		host=$(printf '%s\n' "$body" | sed -n 's/^  "host": "\(.*\)",$/\1/p')
		[[ $host == "$1" ]] && host=asked
		printf 'host=%s\n' "$host"
		printf '%s\n' "$body" | sed -n 's/^    "\([^"]*\)": \[$/\1/p' | tr 'A-Z' 'a-z'
	fi | { grep -vxE 'date|content-length|content-type|transfer-encoding|connection|keep-alive|server|x-served-by' || true; } | sort
}

# check_same_headers stops the run unless nginx-same sends the backend the
# same request header fields (and the client's Host) as altair and answers
# with the same fields. Like Altair's, its config assumes the backend sends
# none of the answer fields itself: nginx's add_header appends to a field
# the backend sent, where Altair's security headers replace it.
check_same_headers() {
	local which p a n
	for which in request answer; do
		p=$path
		[[ $which == request ]] && p=/echo
		a=$(header_names "$ALTAIR_ADDR" "$p" "$which") || die "altair: no answer to GET $p"
		n=$(header_names "$NGINX_SAME_ADDR" "$p" "$which") || die "nginx-same: no answer to GET $p"
		grep -qv '^host=' <<<"$a" || die "altair: no $which header fields found in the answer to GET $p"
		[[ $a == "$n" ]] ||
			die "nginx-same's $which header fields (${n//$'\n'/ }) are not altair's (${a//$'\n'/ }): update the nginx-same config (its nginx_config call) to Altair's defaults"
	done
	say "nginx-same: the backend gets the same request header fields and Host as from altair, the client the same answer fields (${a//$'\n'/ })"
}

# start_nginx NAME starts nginx with $tmp/NAME.conf, pinned like the others.
start_nginx() {
	mkdir -p "$tmp/$1"
	"$nginx_bin" -t -q -p "$tmp/$1/" -e "$tmp/$1-error.log" -c "$tmp/$1.conf" ||
		die "nginx rejected $tmp/$1.conf"
	start "$1" "$nginx_bin" -p "$tmp/$1/" -e "$tmp/$1-error.log" -c "$tmp/$1.conf" -g 'daemon off;'
}

if has_target nginx; then
	nginx_config nginx "listen $NGINX_ADDR;" >"$tmp/nginx.conf"
	say "starting $nginx_version on $NGINX_ADDR (CPU $SERVER_CPU, 1 worker)"
	start_nginx nginx
	wait_ready nginx "$last_pid" "$NGINX_ADDR"
	pid_of[nginx]=$last_pid
fi

if has_target nginx-same; then
	# nginx doing the header work Altair does by default (see
	# docs/configuration.md: forwarding headers, security headers, request
	# ids): the backend parses as many request headers as behind Altair, and
	# the client gets as many answer headers. altair's answer and request are
	# compared with these below, so a change of Altair's defaults shows.
	nginx_config nginx-same "listen $NGINX_SAME_ADDR;" "" "            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-Host \$http_host;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Real-Ip \$remote_addr;
            proxy_set_header X-Request-Id \$request_id;
            add_header X-Frame-Options DENY always;
            add_header Strict-Transport-Security \"max-age=31536000; includeSubDomains\" always;
            add_header Content-Security-Policy \"default-src 'none'; frame-ancestors 'none'\" always;
            add_header Referrer-Policy no-referrer always;
            add_header X-Content-Type-Options nosniff always;
            add_header X-Request-Id \$request_id always;
            add_header Vary Origin always;" >"$tmp/nginx-same.conf"
	say "starting $nginx_version on $NGINX_SAME_ADDR (CPU $SERVER_CPU, 1 worker; Altair's default request and answer headers)"
	start_nginx nginx-same
	wait_ready nginx-same "$last_pid" "$NGINX_SAME_ADDR"
	pid_of[nginx-same]=$last_pid
	if has_target altair; then
		check_same_headers
	else
		say "nginx-same: altair is not measured in this run, so its headers are not compared with Altair's"
	fi
fi

# --- TLS targets --------------------------------------------------------------

# wait_tls_ready NAME PID ADDR waits until GET $path over HTTPS with HTTP/2 on
# ADDR returns 200 and SIZE bytes (curl, not verifying the self-signed
# certificate, which is the same for both targets anyway).
wait_tls_ready() {
	local name=$1 pid=$2 addr=$3 got="" i
	for ((i = 0; i < 100; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 30 "$tmp/$name.log" >&2
			die "$name exited during start-up (log above)"
		fi
		got=$(curl -sk --http2 --max-time 2 -o /dev/null -w '%{http_code} %{size_download} %{http_version}' "https://$addr$path" 2>/dev/null) || got=""
		[[ $got == "200 $SIZE 2" ]] && return 0
		sleep 0.1
	done
	tail -n 30 "$tmp/$name.log" >&2
	die "$name on $addr not ready after 10s: GET https://$addr$path gave '${got:-no answer}', want '200 $SIZE 2' (status, bytes, HTTP/2)"
}

if ((${#tls_targets[@]} > 0)); then
	# One self-signed ECDSA P-256 certificate, served by both TLS targets.
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
		-keyout "$tmp/tls.key" -out "$tmp/tls.crt" >"$tmp/openssl.log" 2>&1 ||
		die "openssl could not make the certificate: $(tail -n 5 "$tmp/openssl.log")"
fi

if has_target altair-tls; then
	cat >"$tmp/altair-tls.yaml" <<EOF
server:
  listen: "$ALTAIR_TLS_ADDR"
  tls:
    certificates:
      - cert_file: $tmp/tls.crt
        key_file: $tmp/tls.key
log:
  level: warn
  access: { disabled: true }
edge:
  rate_limit: { disabled: true }
  ddos: { disabled: true }
routes:
  - name: bench
    match:
      prefix: /
    backends:
      - url: http://$BACKEND_ADDR
defaults:
  health_check:
    disabled: true
EOF
	say "starting altair-tls on $ALTAIR_TLS_ADDR (CPU $SERVER_CPU, GOMAXPROCS=$ALTAIR_GOMAXPROCS; TLS, h2 and http/1.1)"
	start altair-tls env -i PATH="$PATH" GOMAXPROCS="$ALTAIR_GOMAXPROCS" \
		"$altair_bin" run -c "$tmp/altair-tls.yaml"
	wait_tls_ready altair-tls "$last_pid" "$ALTAIR_TLS_ADDR"
	pid_of[altair-tls]=$last_pid
fi

if has_target nginx-tls; then
	nginx_config nginx-tls "listen $NGINX_TLS_ADDR ssl http2;" "        ssl_certificate $tmp/tls.crt;
        ssl_certificate_key $tmp/tls.key;
        ssl_protocols TLSv1.2 TLSv1.3;" >"$tmp/nginx-tls.conf"
	say "starting $nginx_version on $NGINX_TLS_ADDR (CPU $SERVER_CPU, 1 worker; TLS, h2 and http/1.1)"
	start_nginx nginx-tls
	wait_tls_ready nginx-tls "$last_pid" "$NGINX_TLS_ADDR"
	pid_of[nginx-tls]=$last_pid
fi

# --- load -------------------------------------------------------------------

addr_of() {
	case $1 in
	direct) echo "$BACKEND_ADDR" ;;
	altair) echo "$ALTAIR_ADDR" ;;
	altair-cached) echo "$ALTAIR_CACHED_ADDR" ;;
	altair-observed) echo "$ALTAIR_OBSERVED_ADDR" ;;
	altair-auth) echo "$ALTAIR_AUTH_ADDR" ;;
	altair-plugin-go) echo "$ALTAIR_PLUGIN_GO_ADDR" ;;
	altair-wasm) echo "$ALTAIR_WASM_ADDR" ;;
	nginx) echo "$NGINX_ADDR" ;;
	nginx-same) echo "$NGINX_SAME_ADDR" ;;
	altair-tls) echo "$ALTAIR_TLS_ADDR" ;;
	nginx-tls) echo "$NGINX_TLS_ADDR" ;;
	esac
}

# load TARGET DURATION OUT runs wrk, pinned to WRK_CPU, against TARGET.
load() {
	local hdr=()
	[[ $1 == altair-auth ]] && hdr=(-H "Authorization: Bearer $bench_token")
	if ! taskset -c "$WRK_CPU" wrk -t"$THREADS" -c"$CONNS" -d"$2" --timeout 5s --latency "${hdr[@]}" \
		"http://$(addr_of "$1")$(path_of "$1")" >"$3" 2>&1; then
		cat "$3" >&2
		die "wrk against $1 failed"
	fi
}

# parse OUT prints "REQ_PER_SEC P50_MS P99_MS ERRORS REQUESTS" from wrk's output;
# errors are non-2xx/3xx responses plus socket errors.
parse() {
	awk '
	function ms(v, n) {
		n = v + 0
		if (v ~ /us$/) return n / 1000
		if (v ~ /ms$/) return n
		if (v ~ /m$/) return n * 60000
		if (v ~ /s$/) return n * 1000
		return n
	}
	/^Requests\/sec:/ { rps = $2 }
	$1 == "50%" { p50 = ms($2) }
	$1 == "99%" { p99 = ms($2) }
	/ requests in / { reqs = $1 }
	/Non-2xx or 3xx responses:/ { errs += $NF }
	/Socket errors:/ {
		for (i = 3; i <= NF; i++) { gsub(/,/, "", $i); if ($i ~ /^[0-9]+$/) errs += $i }
	}
	END {
		if (rps == "" || p50 == "" || p99 == "") exit 1
		printf "%.2f %.3f %.3f %d %d\n", rps, p50, p99, errs, reqs
	}' "$1"
}

# cpu_ticks N prints "BUSY TOTAL" jiffies of CPU N from /proc/stat, to tell
# whether the servers' core or wrk's core was the bottleneck of a run.
cpu_ticks() {
	awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat
}
# proc_ticks PID... prints the CPU time (user + system, in clock ticks) the
# processes have used so far.
proc_ticks() {
	local p line sum=0
	local -a f
	for p in "$@"; do
		line=$(<"/proc/$p/stat") || continue
		read -r -a f <<<"${line##*) }" # after the command name, which may hold spaces
		sum=$((sum + f[11] + f[12]))    # utime, stime: fields 14 and 15
	done
	echo "$sum"
}
# target_pids TARGET prints the PIDs of TARGET's own server: for nginx, the
# master and its worker.
target_pids() {
	local p=${pid_of[$1]}
	echo "$p"
	if [[ $1 == nginx* ]]; then
		ps -o pid= --ppid "$p" || true
	fi
}
clk_tck=$(getconf CLK_TCK)
readonly clk_tck
# us_per_req TICKS REQUESTS prints microseconds of CPU per request.
us_per_req() { awk -v t="$1" -v n="$2" -v hz="$clk_tck" 'BEGIN { if (n > 0) printf "%.1f", t * 1e6 / hz / n; else print "?" }'; }
percent() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f", 100 * a / b; else print "?" }'; }

# median FORMAT VALUE... prints the median of the values with printf's FORMAT.
median() {
	local format=$1
	shift
	printf '%s\n' "$@" | sort -g | awk -v f="$format" '
		{ v[NR] = $1 }
		END { printf f, (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

n=${#targets[@]}
per_run=$(seconds "$DURATION")
estimate=$((n * $(seconds "$WARMUP") + ROUNDS * n * per_run + ROUNDS * ${#tls_targets[@]} * per_run))
say "GOMAXPROCS: altair=$ALTAIR_GOMAXPROCS (to match nginx's single worker), backend=$BACKEND_GOMAXPROCS"
((n == 0)) || say "load: wrk on CPU $WRK_CPU, $THREADS thread(s), $CONNS connections, GET $path; servers on CPU $SERVER_CPU"
((n == 0)) || say "plan: warm-up $WARMUP per target, then $ROUNDS round(s) of ${targets[*]} for $DURATION each, order rotating (about ${estimate}s of load)"

# Other work on the benchmark's CPUs (builds, tests, another benchmark) skews every
# number; measure how busy they are with the servers idle, and say so.
read -r srv_busy0 srv_total0 <<<"$(cpu_ticks "$SERVER_CPU")"
read -r wrk_busy0 wrk_total0 <<<"$(cpu_ticks "$WRK_CPU")"
sleep 1
read -r srv_busy1 srv_total1 <<<"$(cpu_ticks "$SERVER_CPU")"
read -r wrk_busy1 wrk_total1 <<<"$(cpu_ticks "$WRK_CPU")"
idle_srv=$(percent $((srv_busy1 - srv_busy0)) $((srv_total1 - srv_total0)))
idle_wrk=$(percent $((wrk_busy1 - wrk_busy0)) $((wrk_total1 - wrk_total0)))
noisy=""
if [[ $idle_srv == "?" || $idle_wrk == "?" ]] || ((idle_srv > 10 || idle_wrk > 10)); then
	noisy="CPU $SERVER_CPU was ${idle_srv}% and CPU $WRK_CPU ${idle_wrk}% busy before the load started: other processes are competing, so these numbers are unreliable."
	say "warning: $noisy"
else
	say "idle check: CPU $SERVER_CPU ${idle_srv}% busy, CPU $WRK_CPU ${idle_wrk}% busy before the load"
fi

for t in "${targets[@]}"; do
	say "warm-up: $t ($WARMUP)"
	load "$t" "$WARMUP" "$tmp/warmup-$t.txt"
done

declare -A rps p50 p99 errors served proxy_us server_us
for t in "${targets[@]}"; do
	rps[$t]="" p50[$t]="" p99[$t]="" errors[$t]=0 proxy_us[$t]="" server_us[$t]=""
	# Requests wrk saw answered, warm-up included: what altair-observed's
	# access log must at least hold.
	served[$t]=$(awk '/ requests in / { print $1 }' "$tmp/warmup-$t.txt")
	served[$t]=${served[$t]:-0}
done
rounds_md=""
for ((r = 0; r < (n > 0 ? ROUNDS : 0); r++)); do
	order=()
	for ((i = 0; i < n; i++)); do
		order+=("${targets[(r + i) % n]}")
	done
	printf '\nRound %d/%d (order: %s)\n' $((r + 1)) "$ROUNDS" "${order[*]}"
	printf '  %-15s %12s %10s %10s %8s %9s %9s %11s %11s\n' target 'req/s' 'p50 ms' 'p99 ms' errors 'srv cpu' 'wrk cpu' 'proxy us/r' 'server us/r'
	for t in "${order[@]}"; do
		out=$tmp/round$((r + 1))-$t.txt
		# shellcheck disable=SC2046 # one PID per word
		{
			read -r srv_busy0 srv_total0 <<<"$(cpu_ticks "$SERVER_CPU")"
			read -r wrk_busy0 wrk_total0 <<<"$(cpu_ticks "$WRK_CPU")"
			proxy0=0
			[[ $t == direct ]] || proxy0=$(proc_ticks $(target_pids "$t"))
			backend0=$(proc_ticks "$backend_pid")
			load "$t" "$DURATION" "$out"
			read -r srv_busy1 srv_total1 <<<"$(cpu_ticks "$SERVER_CPU")"
			read -r wrk_busy1 wrk_total1 <<<"$(cpu_ticks "$WRK_CPU")"
			proxy1=0
			[[ $t == direct ]] || proxy1=$(proc_ticks $(target_pids "$t"))
			backend1=$(proc_ticks "$backend_pid")
		}
		srv_cpu=$(percent $((srv_busy1 - srv_busy0)) $((srv_total1 - srv_total0)))
		wrk_cpu=$(percent $((wrk_busy1 - wrk_busy0)) $((wrk_total1 - wrk_total0)))
		parsed=$(parse "$out") || {
			cat "$out" >&2
			die "could not parse wrk's output for $t"
		}
		read -r v50 v99 verr vreq <<<"${parsed#* }"
		v=${parsed%% *}
		rps[$t]+="$v " p50[$t]+="$v50 " p99[$t]+="$v99 "
		errors[$t]=$((errors[$t] + verr))
		served[$t]=$((served[$t] + vreq))
		# CPU per request of the target's own process(es), and of proxy and
		# backend together: steadier than req/s when other work shares the
		# machine, since that work takes CPU time from the servers rather
		# than adding to theirs (see bench/README.md).
		vproxy=-
		[[ $t == direct ]] || vproxy=$(us_per_req $((proxy1 - proxy0)) "$vreq")
		vserver=$(us_per_req $((proxy1 - proxy0 + backend1 - backend0)) "$vreq")
		[[ $t == direct ]] || proxy_us[$t]+="$vproxy "
		server_us[$t]+="$vserver "
		printf '  %-15s %12s %10s %10s %8s %8s%% %8s%% %11s %11s\n' "$t" "$v" "$v50" "$v99" "$verr" "$srv_cpu" "$wrk_cpu" "$vproxy" "$vserver"
		rounds_md+="| $((r + 1)) | $t | $v | $v50 | $v99 | $verr / $vreq | $srv_cpu % | $wrk_cpu % | $vproxy | $vserver |"$'\n'
	done
done

# --- TLS targets: handshake rate and HTTP/2 multiplexed throughput ---------

# handshakes TARGET DURATION OUT runs wrk over https with Connection: close, so
# that every request is a new connection and a full TLS handshake (wrk keeps no
# TLS sessions, so none is resumed).
handshakes() {
	if ! taskset -c "$WRK_CPU" wrk -t1 -c"$TLS_CONNS" -d"$2" --timeout 5s --latency -H 'Connection: close' \
		"https://$(addr_of "$1")$path" >"$3" 2>&1; then
		cat "$3" >&2
		die "wrk (https, Connection: close) against $1 failed"
	fi
}
# h2 TARGET REQUESTS OUT runs h2load over TLS (ALPN h2), multiplexing.
h2() {
	if ! taskset -c "$WRK_CPU" h2load -t1 -c"$H2_CONNS" -m"$H2_STREAMS" -n"$2" \
		"https://$(addr_of "$1")$path" >"$3" 2>&1; then
		cat "$3" >&2
		die "h2load against $1 failed"
	fi
}
# parse_h2 OUT prints "REQ_PER_SEC FAILED REQUESTS" from h2load's output, and
# fails unless h2 was negotiated.
parse_h2() {
	awk '
	/^Application protocol:/ { proto = $3 }
	/^finished in/ { rps = $4 + 0 }
	/^requests:/ { total = $2; failed = $10 + $12 + $14 }
	/^status codes:/ { ok = $3 + 0 }
	END {
		if (proto != "h2" || rps == "") exit 1
		printf "%.2f %d %d\n", rps, failed + (total - ok), total
	}' "$1"
}

declare -A hs_rps h2_rps tls_errors
tls_md=""
nt=${#tls_targets[@]}
if ((nt > 0)); then
	say "TLS: handshakes with wrk on CPU $WRK_CPU (https, Connection: close, $TLS_CONNS connections, $DURATION); HTTP/2 with h2load (-c $H2_CONNS -m $H2_STREAMS -n $H2_REQUESTS); $ROUNDS round(s) of ${tls_targets[*]}"
	for t in "${tls_targets[@]}"; do
		hs_rps[$t]="" h2_rps[$t]="" tls_errors[$t]=0
		say "warm-up: $t ($WARMUP of handshakes, $((H2_REQUESTS / 10)) HTTP/2 requests)"
		handshakes "$t" "$WARMUP" "$tmp/warmup-hs-$t.txt"
		h2 "$t" $((H2_REQUESTS / 10 > H2_CONNS ? H2_REQUESTS / 10 : H2_CONNS)) "$tmp/warmup-h2-$t.txt"
	done
	for ((r = 0; r < ROUNDS; r++)); do
		order=()
		for ((i = 0; i < nt; i++)); do
			order+=("${tls_targets[(r + i) % nt]}")
		done
		printf '\nTLS round %d/%d (order: %s)\n' $((r + 1)) "$ROUNDS" "${order[*]}"
		printf '  %-12s %14s %8s %9s %9s %14s %8s %9s %9s\n' target 'handshakes/s' errors 'srv cpu' 'wrk cpu' 'h2 req/s' errors 'srv cpu' 'h2l cpu'
		for t in "${order[@]}"; do
			out=$tmp/round$((r + 1))-hs-$t.txt
			read -r srv_busy0 srv_total0 <<<"$(cpu_ticks "$SERVER_CPU")"
			read -r wrk_busy0 wrk_total0 <<<"$(cpu_ticks "$WRK_CPU")"
			handshakes "$t" "$DURATION" "$out"
			read -r srv_busy1 srv_total1 <<<"$(cpu_ticks "$SERVER_CPU")"
			read -r wrk_busy1 wrk_total1 <<<"$(cpu_ticks "$WRK_CPU")"
			hs_srv=$(percent $((srv_busy1 - srv_busy0)) $((srv_total1 - srv_total0)))
			hs_wrk=$(percent $((wrk_busy1 - wrk_busy0)) $((wrk_total1 - wrk_total0)))
			parsed=$(parse "$out") || {
				cat "$out" >&2
				die "could not parse wrk's output for $t"
			}
			read -r hs _ _ hs_err hs_req <<<"$parsed"

			out=$tmp/round$((r + 1))-h2-$t.txt
			read -r srv_busy0 srv_total0 <<<"$(cpu_ticks "$SERVER_CPU")"
			read -r wrk_busy0 wrk_total0 <<<"$(cpu_ticks "$WRK_CPU")"
			h2 "$t" "$H2_REQUESTS" "$out"
			read -r srv_busy1 srv_total1 <<<"$(cpu_ticks "$SERVER_CPU")"
			read -r wrk_busy1 wrk_total1 <<<"$(cpu_ticks "$WRK_CPU")"
			h2_srv=$(percent $((srv_busy1 - srv_busy0)) $((srv_total1 - srv_total0)))
			h2_wrk=$(percent $((wrk_busy1 - wrk_busy0)) $((wrk_total1 - wrk_total0)))
			parsed=$(parse_h2 "$out") || {
				cat "$out" >&2
				die "could not parse h2load's output for $t (or HTTP/2 was not negotiated)"
			}
			read -r h2v h2_err h2_req <<<"$parsed"

			hs_rps[$t]+="$hs " h2_rps[$t]+="$h2v "
			tls_errors[$t]=$((tls_errors[$t] + hs_err + h2_err))
			printf '  %-12s %14s %8s %8s%% %8s%% %14s %8s %8s%% %8s%%\n' "$t" "$hs" "$hs_err" "$hs_srv" "$hs_wrk" "$h2v" "$h2_err" "$h2_srv" "$h2_wrk"
			tls_md+="| $((r + 1)) | $t | $hs | $hs_err / $hs_req | $hs_srv % | $hs_wrk % | $h2v | $h2_err / $h2_req | $h2_srv % | $h2_wrk % |"$'\n'
		done
	done
fi

# --- summary ----------------------------------------------------------------

# altair-observed must have logged every request and exported nothing.
access_note="" access_warn="" export_warn=""
if has_target altair-observed; then
	sleep 0.3 # the access log reaches its file within 100 ms
	obs_log=$tmp/altair-observed.log
	access_lines=$(grep -c '"msg":"access"' "$obs_log" || true)
	access_bytes=$(wc -c <"$obs_log")
	access_note="$access_lines lines, $((access_bytes / 1048576)) MiB, for ${served[altair-observed]} requests wrk saw answered (warm-up included)"
	((access_lines >= served[altair-observed])) ||
		access_warn="altair-observed logged $access_lines access lines for ${served[altair-observed]} requests: some requests were not logged, so its ratio understates the access log's cost."
	exports=$(grep -c 'export failed' "$obs_log" || true)
	((exports == 0)) ||
		export_warn="altair-observed tried to export spans at sample_ratio 0 (log: $(grep -m1 'export failed' "$obs_log"))."
	say "altair-observed access log: $access_note"
fi

# altair-cached must have answered every request from its cache: its metrics
# count the route's requests by cache result.
cache_note="" cache_warn=""
if has_target altair-cached; then
	metrics=$(http_get "$ALTAIR_CACHED_ADDR" /metrics) || metrics=""
	# cache_count RESULT prints the route's count of that cache result.
	cache_count() {
		awk -v r="result=\"$1\"" 'index($0, "cache_requests_total{") == 1 && index($0, r) { s += $NF } END { printf "%d", s }' <<<"$metrics"
	}
	hits=$(cache_count hit)
	others=""
	for result in miss stale revalidated bypass; do
		c=$(cache_count "$result")
		((c == 0)) || others+=", $c $result"
	done
	cache_note="$hits hits${others:-, nothing else} for ${served[altair-cached]} requests wrk saw answered (warm-up included) and the readiness probes"
	((hits >= served[altair-cached])) ||
		cache_warn="altair-cached answered only $hits requests from its cache for ${served[altair-cached]} requests wrk saw answered${others:+ (also$others)}: it did not measure cache hits alone."
	say "altair-cached cache: $cache_note"
fi

declare -A med_rps med_p50 med_p99 med_proxy_us med_server_us
for t in "${targets[@]}"; do
	# shellcheck disable=SC2086 # word splitting of the value lists is intended
	{
		med_rps[$t]=$(median %.2f ${rps[$t]})
		med_p50[$t]=$(median %.3f ${p50[$t]})
		med_p99[$t]=$(median %.3f ${p99[$t]})
		med_proxy_us[$t]=-
		[[ $t == direct ]] || med_proxy_us[$t]=$(median %.1f ${proxy_us[$t]})
		med_server_us[$t]=$(median %.1f ${server_us[$t]})
	}
done

declare -A med_hs med_h2
for t in "${tls_targets[@]}"; do
	# shellcheck disable=SC2086 # word splitting of the value lists is intended
	{
		med_hs[$t]=$(median %.2f ${hs_rps[$t]})
		med_h2[$t]=$(median %.2f ${h2_rps[$t]})
	}
done

commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo "no commit yet")
if [[ -n $(git -C "$root" status --porcelain 2>/dev/null) ]]; then
	commit+=" (uncommitted changes)"
fi
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
wrk_version=$(wrk -v 2>&1 | awk 'NR == 1 { print $2 }' || true)
servers="demo-upstream (GOMAXPROCS=$BACKEND_GOMAXPROCS)"
has_target altair && servers+=", Altair (GOMAXPROCS=$ALTAIR_GOMAXPROCS, no access log)"
has_target altair-cached && servers+=", Altair with the route's response cache on (GOMAXPROCS=$ALTAIR_GOMAXPROCS, no access log; GET $cached_path)"
has_target altair-observed && servers+=", Altair with access log to a file + tracing at sample_ratio 0 (GOMAXPROCS=$ALTAIR_GOMAXPROCS)"
has_target altair-auth && servers+=", Altair with JWT + rate limit (GOMAXPROCS=$ALTAIR_GOMAXPROCS)"
has_target altair-plugin-go && servers+=", Altair built with the empty Go plugin (bench/emptyplugin) on the route (GOMAXPROCS=$ALTAIR_GOMAXPROCS, no access log)"
has_target altair-wasm && servers+=", Altair with the empty wasm guest on the route (GOMAXPROCS=$ALTAIR_GOMAXPROCS, no access log)"
has_target nginx && servers+=", $nginx_version (1 worker)"
has_target nginx-same && servers+=", $nginx_version with Altair's default request and answer headers (1 worker)"
has_target altair-tls && servers+=", Altair with server.tls (GOMAXPROCS=$ALTAIR_GOMAXPROCS, no access log)"
has_target nginx-tls && servers+=", $nginx_version with listen ssl http2 (1 worker)"

summary=$tmp/summary.md
{
	printf '# Benchmark: latest run\n\n'
	# shellcheck disable=SC2016 # the backquotes are markdown, not expansions
	printf 'Written by `bench/run.sh` (`make bench`) on %s and overwritten by every run; see bench/README.md.\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
	printf '| setting | value |\n|---|---|\n'
	printf '| commit | %s |\n' "$commit"
	if wants_altair && [[ -n ${ALTAIR_BIN:-} ]]; then
		printf '| altair binary | prebuilt: %s (%s), not built from the work tree |\n' "$ALTAIR_BIN" \
			"$("$ALTAIR_BIN" version 2>/dev/null || echo "version unknown")"
	fi
	printf '| machine | %s, %s CPUs online, %s |\n' "${cpu_model:-unknown CPU}" "$ncpu" "$(uname -sr)"
	((n > 0)) && printf '| load | wrk %s on CPU %s: %s thread(s), %s connections, GET %s (%s-byte body), HTTP/1.1 keep-alive |\n' \
		"$wrk_version" "$WRK_CPU" "$THREADS" "$CONNS" "$path" "$SIZE"
	# shellcheck disable=SC2016 # the backquotes are markdown, not expansions
	((nt > 0)) && printf '| TLS load | on CPU %s, GET %s (%s-byte body), one self-signed ECDSA P-256 certificate for both: handshakes: wrk %s over https, 1 thread, %s connections, `Connection: close` (a full handshake per request); HTTP/2: %s, `-t 1 -c %s -m %s -n %s` |\n' \
		"$WRK_CPU" "$path" "$SIZE" "$wrk_version" "$TLS_CONNS" "$(h2load --version 2>&1 | awk 'NR == 1 { print $1, $2 }')" "$H2_CONNS" "$H2_STREAMS" "$H2_REQUESTS"
	printf '| servers | on CPU %s: %s |\n' "$SERVER_CPU" "$servers"
	printf '| rounds | %s × %s per target, order rotating each round, after a %s warm-up per target |\n' "$ROUNDS" "$DURATION" "$WARMUP"
	printf '| idle check | CPU %s %s%% busy, CPU %s %s%% busy before the load |\n' "$SERVER_CPU" "$idle_srv" "$WRK_CPU" "$idle_wrk"
	[[ -n $access_note ]] && printf '| altair-observed access log | %s |\n' "$access_note"
	[[ -n $cache_note ]] && printf '| altair-cached cache results | %s |\n' "$cache_note"
	printf '\n'

	if ((n > 0)); then
	printf '## Medians over %s round(s)\n\n' "$ROUNDS"
	printf '| target | req/s | p50 ms | p99 ms | proxy CPU µs/req | server CPU µs/req (proxy + backend) | errors (all rounds) |\n|---|---:|---:|---:|---:|---:|---:|\n'
	for t in "${targets[@]}"; do
		printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$t" "${med_rps[$t]}" "${med_p50[$t]}" "${med_p99[$t]}" \
			"${med_proxy_us[$t]}" "${med_server_us[$t]}" "${errors[$t]}"
	done

	printf '\n## Ratios (of medians)\n\n| ratio | value |\n|---|---:|\n'
	has_target altair && has_target direct && printf '| altair / direct, req/s | %s |\n' "$(ratio "${med_rps[altair]}" "${med_rps[direct]}")"
	has_target altair-cached && has_target altair && {
		printf '| altair-cached / altair, req/s (a cache hit vs a proxied request; goal: at least 2) | %s |\n' "$(ratio "${med_rps[altair-cached]}" "${med_rps[altair]}")"
		printf '| altair-cached / altair, from server CPU per request (altair µs/req ÷ altair-cached µs/req) | %s |\n' \
			"$(ratio "${med_server_us[altair]}" "${med_server_us[altair-cached]}")"
	}
	has_target altair-cached && has_target direct && printf '| altair-cached / direct, req/s | %s |\n' "$(ratio "${med_rps[altair-cached]}" "${med_rps[direct]}")"
	has_target altair-observed && has_target altair && {
		printf '| altair-observed / altair, req/s (access log + unsampled tracing cost) | %s |\n' "$(ratio "${med_rps[altair-observed]}" "${med_rps[altair]}")"
		printf '| altair-observed / altair, from server CPU per request (altair µs/req ÷ altair-observed µs/req; less sensitive to other load) | %s |\n' \
			"$(ratio "${med_server_us[altair]}" "${med_server_us[altair-observed]}")"
	}
	has_target altair-observed && has_target direct && printf '| altair-observed / direct, req/s | %s |\n' "$(ratio "${med_rps[altair-observed]}" "${med_rps[direct]}")"
	has_target altair-auth && has_target altair && printf '| altair-auth / altair, req/s (edge + auth cost) | %s |\n' "$(ratio "${med_rps[altair-auth]}" "${med_rps[altair]}")"
	has_target altair-plugin-go && has_target altair && {
		printf '| altair-plugin-go / altair, req/s (an empty compiled-in Go plugin) | %s |\n' "$(ratio "${med_rps[altair-plugin-go]}" "${med_rps[altair]}")"
		printf '| altair-plugin-go / altair, from server CPU per request (altair µs/req ÷ altair-plugin-go µs/req) | %s |\n' \
			"$(ratio "${med_server_us[altair]}" "${med_server_us[altair-plugin-go]}")"
	}
	has_target altair-wasm && has_target altair && {
		printf '| altair-wasm / altair, req/s (an empty wasm plugin; goal: at least 0.90) | %s |\n' "$(ratio "${med_rps[altair-wasm]}" "${med_rps[altair]}")"
		printf '| altair-wasm / altair, from server CPU per request (altair µs/req ÷ altair-wasm µs/req) | %s |\n' \
			"$(ratio "${med_server_us[altair]}" "${med_server_us[altair-wasm]}")"
	}
	has_target nginx && has_target direct && printf '| nginx / direct, req/s | %s |\n' "$(ratio "${med_rps[nginx]}" "${med_rps[direct]}")"
	has_target altair && has_target nginx && {
		printf '| altair / nginx, req/s | %s |\n' "$(ratio "${med_rps[altair]}" "${med_rps[nginx]}")"
		printf '| altair / nginx, p99 latency | %s |\n' "$(ratio "${med_p99[altair]}" "${med_p99[nginx]}")"
	}
	has_target nginx-same && has_target nginx && printf '| nginx-same / nginx, req/s (what Altair'"'"'s default headers cost nginx, and the backend) | %s |\n' "$(ratio "${med_rps[nginx-same]}" "${med_rps[nginx]}")"
	has_target altair && has_target nginx-same && {
		printf '| altair / nginx-same, req/s (the same header work) | %s |\n' "$(ratio "${med_rps[altair]}" "${med_rps[nginx-same]}")"
		printf '| altair / nginx-same, p99 latency | %s |\n' "$(ratio "${med_p99[altair]}" "${med_p99[nginx-same]}")"
	}
	has_target altair || printf '| (altair not measured in this run) | |\n'

	printf '\n## Rounds\n\n| round | target | req/s | p50 ms | p99 ms | errors / requests | server CPU busy | wrk CPU busy | proxy CPU µs/req | server CPU µs/req |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n'
	printf '%s' "$rounds_md"
	fi

	if ((nt > 0)); then
		printf '\n## TLS: medians over %s round(s)\n\n' "$ROUNDS"
		printf '| target | TLS handshakes/s (new connection per request) | HTTP/2 req/s (multiplexed) | errors (all rounds) |\n|---|---:|---:|---:|\n'
		for t in "${tls_targets[@]}"; do
			printf '| %s | %s | %s | %s |\n' "$t" "${med_hs[$t]}" "${med_h2[$t]}" "${tls_errors[$t]}"
		done
		if has_target altair-tls && has_target nginx-tls; then
			printf '\n| ratio | value |\n|---|---:|\n'
			printf '| altair-tls / nginx-tls, handshakes/s | %s |\n' "$(ratio "${med_hs[altair-tls]}" "${med_hs[nginx-tls]}")"
			printf '| altair-tls / nginx-tls, HTTP/2 req/s | %s |\n' "$(ratio "${med_h2[altair-tls]}" "${med_h2[nginx-tls]}")"
		fi
		printf '\n## TLS rounds\n\n| round | target | handshakes/s | errors / requests | server CPU busy | wrk CPU busy | HTTP/2 req/s | errors / requests | server CPU busy | h2load CPU busy |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n'
		printf '%s' "$tls_md"
	fi

	if [[ -n $noisy ]]; then
		printf '\n**Warning:** %s\n' "$noisy"
	fi
	for w in "$access_warn" "$export_warn" "$cache_warn"; do
		[[ -z $w ]] || printf '\n**Warning:** %s\n' "$w"
	done
	for t in "${targets[@]}"; do
		if ((errors[$t] > 0)); then
			printf '\n**Warning:** %s had %s failed requests (non-2xx/3xx or socket errors); its numbers are suspect.\n' "$t" "${errors[$t]}"
		fi
	done
	for t in "${tls_targets[@]}"; do
		if ((tls_errors[$t] > 0)); then
			printf '\n**Warning:** %s had %s failed requests (wrk: non-2xx/3xx or socket errors; h2load: failed, errored or not 2xx); its numbers are suspect.\n' "$t" "${tls_errors[$t]}"
		fi
	done
} >"$summary"

printf '\n'
cat "$summary"
cp "$summary" "$results/latest.md"
elapsed=$((SECONDS - started))
printf '\nWrote %s\nTotal runtime: %dm%02ds\n' "${results#"$root"/}/latest.md" $((elapsed / 60)) $((elapsed % 60))
