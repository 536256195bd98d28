#!/usr/bin/env bash
# bench/run.sh: load-test the direct backend, Altair and nginx (both as plain
# reverse proxies in front of the same backend) with wrk, in one run of
# interleaved rounds, and quote each proxy against the direct backend.
#
# Usage: bench/run.sh            (or: make bench)
# Env:   CONNS=64 THREADS=1 DURATION=10s ROUNDS=3 SIZE=1024 WARMUP=3s
#        TARGETS="direct altair altair-auth nginx" WRK_CPU=0 SERVER_CPU=1
#        (altair-auth: Altair with a JWT verified on every request, rate
#        limiting and DDoS counting on, limits high enough never to refuse)
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
TARGETS=${TARGETS:-direct altair altair-auth nginx}
WRK_CPU=${WRK_CPU:-0}
SERVER_CPU=${SERVER_CPU:-1}
ALTAIR_GOMAXPROCS=${ALTAIR_GOMAXPROCS:-1}
BACKEND_GOMAXPROCS=${BACKEND_GOMAXPROCS:-1}

readonly ALTAIR_ADDR=127.0.0.1:18080
readonly BACKEND_ADDR=127.0.0.1:18081
readonly NGINX_ADDR=127.0.0.1:18082
readonly ALTAIR_AUTH_ADDR=127.0.0.1:18083
# An HMAC secret for the altair-auth target, and a token signed with it below.
readonly JWT_SECRET_BENCH=bench-secret-bench-secret-bench-secret

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly root
readonly bin=$root/bench/.bin
readonly results=$root/bench/results
readonly path=/bytes/$SIZE
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
for v in CONNS THREADS ROUNDS SIZE WRK_CPU SERVER_CPU ALTAIR_GOMAXPROCS BACKEND_GOMAXPROCS; do
	is_uint "${!v}" || die "$v=${!v}: want a non-negative integer"
done
((CONNS >= 1 && THREADS >= 1 && ROUNDS >= 1)) || die "CONNS, THREADS and ROUNDS must be at least 1"
((THREADS <= CONNS)) || die "THREADS=$THREADS exceeds CONNS=$CONNS (wrk needs a connection per thread)"
((SIZE <= 10485760)) || die "SIZE=$SIZE: the demo upstream serves at most 10485760 bytes"
[[ $DURATION =~ ^[0-9]+[smh]?$ ]] || die "DURATION=$DURATION: want wrk's format, such as 10s or 1m"
[[ $WARMUP =~ ^[0-9]+[smh]?$ ]] || die "WARMUP=$WARMUP: want wrk's format, such as 3s"
read -r -a targets <<<"$TARGETS"
((${#targets[@]} >= 1)) || die "TARGETS is empty"
for t in "${targets[@]}"; do
	[[ $t == direct || $t == altair || $t == altair-auth || $t == nginx ]] ||
		die "TARGETS: unknown target '$t' (want direct, altair, altair-auth, nginx)"
done
has_target() { [[ " ${targets[*]} " == *" $1 "* ]]; }

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
nginx_bin=""
if has_target nginx; then
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
wants_altair() { has_target altair || has_target altair-auth; }
if wants_altair && [[ -n ${ALTAIR_BIN:-} ]]; then
	altair_bin=$ALTAIR_BIN
	[[ -x $altair_bin ]] || die "ALTAIR_BIN=$altair_bin is not an executable file"
	say "using prebuilt altair: $altair_bin"
elif wants_altair; then
	say "building altair"
	(cd "$root" && CGO_ENABLED=0 go build -o "$altair_bin" ./cmd/altair) ||
		die "cmd/altair does not build (errors above); to benchmark without it: TARGETS=\"direct nginx\" $0"
fi

# --- servers ----------------------------------------------------------------

tmp=$(mktemp -d "${TMPDIR:-/tmp}/altair-bench.XXXXXX")

# fetch ADDR PATH prints "STATUS BODY_LENGTH" for one HTTP/1.0 GET, using only
# bash's /dev/tcp so that the script needs no HTTP client.
fetch() {
	local resp status_line body code
	resp=$(
		exec 2>/dev/null # a refused connection is an answer here, not an error to show
		exec 3<>"/dev/tcp/${1%:*}/${1##*:}" || exit 1
		# AUTH_HEADER, when set, is sent too (the altair-auth target).
		printf 'GET %s HTTP/1.0\r\nHost: %s\r\n%s\r\n' "$2" "$1" "${AUTH_HEADER:+$AUTH_HEADER$'\r\n'}" >&3
		timeout 5 cat <&3
		printf . # keeps $( ) from eating the body's trailing newlines
	) || return 1
	status_line=${resp%%$'\r\n'*}
	body=${resp#*$'\r\n\r\n'}
	body=${body%.}
	read -r _ code _ <<<"$status_line"
	printf '%s %s\n' "${code:-0}" "${#body}"
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

# wait_ready NAME PID ADDR waits until GET $path on ADDR returns 200 and exactly
# SIZE bytes, so every target is known to serve the same thing before it is loaded.
wait_ready() {
	local name=$1 pid=$2 addr=$3 got="" want="200 $SIZE" i
	for ((i = 0; i < 100; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 30 "$tmp/$name.log" >&2
			die "$name exited during start-up (log above)"
		fi
		if got=$(fetch "$addr" "$path") && [[ $got == "$want" ]]; then
			return 0
		fi
		sleep 0.1
	done
	tail -n 30 "$tmp/$name.log" >&2
	die "$name on $addr not ready after 10s: GET $path gave '${got:-no answer}', want '$want'"
}

addrs=("$BACKEND_ADDR")
has_target altair && addrs+=("$ALTAIR_ADDR")
has_target altair-auth && addrs+=("$ALTAIR_AUTH_ADDR")
has_target nginx && addrs+=("$NGINX_ADDR")
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

if has_target altair; then
	cat >"$tmp/altair.yaml" <<EOF
server:
  listen: "$ALTAIR_ADDR"
log:
  level: warn
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
defaults:
  health_check:
    disabled: true
EOF
	say "starting altair on $ALTAIR_ADDR (CPU $SERVER_CPU, GOMAXPROCS=$ALTAIR_GOMAXPROCS)"
	start altair env -i PATH="$PATH" GOMAXPROCS="$ALTAIR_GOMAXPROCS" \
		"$altair_bin" run -c "$tmp/altair.yaml"
	wait_ready altair "$last_pid" "$ALTAIR_ADDR"
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
fi

nginx_version=""
if has_target nginx; then
	nginx_user=""
	if ((EUID == 0)); then
		nginx_user="user root;" # workers would otherwise drop to nobody, who cannot use $tmp
	fi
	mkdir -p "$tmp/nginx"
	cat >"$tmp/nginx.conf" <<EOF
$nginx_user
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    default_type application/octet-stream;
    client_body_temp_path $tmp/nginx/client_body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    # Go servers put no cap on requests per keep-alive connection; nginx's default
    # of 1000 would make it, alone, reconnect every 1000 requests.
    keepalive_requests 1000000;
    upstream backend {
        server $BACKEND_ADDR;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen $NGINX_ADDR;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # The same forwarding header Altair adds, so both do comparable work.
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        }
    }
}
EOF
	nginx_version=$("$nginx_bin" -v 2>&1)
	nginx_version=${nginx_version#nginx version: }
	"$nginx_bin" -t -q -p "$tmp/nginx/" -e "$tmp/nginx-error.log" -c "$tmp/nginx.conf" ||
		die "nginx rejected $tmp/nginx.conf"
	say "starting $nginx_version on $NGINX_ADDR (CPU $SERVER_CPU, 1 worker)"
	start nginx "$nginx_bin" -p "$tmp/nginx/" -e "$tmp/nginx-error.log" -c "$tmp/nginx.conf" -g 'daemon off;'
	wait_ready nginx "$last_pid" "$NGINX_ADDR"
fi

# --- load -------------------------------------------------------------------

addr_of() {
	case $1 in
	direct) echo "$BACKEND_ADDR" ;;
	altair) echo "$ALTAIR_ADDR" ;;
	altair-auth) echo "$ALTAIR_AUTH_ADDR" ;;
	nginx) echo "$NGINX_ADDR" ;;
	esac
}

# load TARGET DURATION OUT runs wrk, pinned to WRK_CPU, against TARGET.
load() {
	local hdr=()
	[[ $1 == altair-auth ]] && hdr=(-H "Authorization: Bearer $bench_token")
	if ! taskset -c "$WRK_CPU" wrk -t"$THREADS" -c"$CONNS" -d"$2" --timeout 5s --latency "${hdr[@]}" \
		"http://$(addr_of "$1")$path" >"$3" 2>&1; then
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
estimate=$((n * $(seconds "$WARMUP") + ROUNDS * n * per_run))
say "GOMAXPROCS: altair=$ALTAIR_GOMAXPROCS (to match nginx's single worker), backend=$BACKEND_GOMAXPROCS"
say "load: wrk on CPU $WRK_CPU, $THREADS thread(s), $CONNS connections, GET $path; servers on CPU $SERVER_CPU"
say "plan: warm-up $WARMUP per target, then $ROUNDS round(s) of ${targets[*]} for $DURATION each, order rotating (about ${estimate}s of load)"

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

declare -A rps p50 p99 errors
for t in "${targets[@]}"; do
	rps[$t]="" p50[$t]="" p99[$t]="" errors[$t]=0
done
rounds_md=""
for ((r = 0; r < ROUNDS; r++)); do
	order=()
	for ((i = 0; i < n; i++)); do
		order+=("${targets[(r + i) % n]}")
	done
	printf '\nRound %d/%d (order: %s)\n' $((r + 1)) "$ROUNDS" "${order[*]}"
	printf '  %-8s %12s %10s %10s %8s %9s %9s\n' target 'req/s' 'p50 ms' 'p99 ms' errors 'srv cpu' 'wrk cpu'
	for t in "${order[@]}"; do
		out=$tmp/round$((r + 1))-$t.txt
		read -r srv_busy0 srv_total0 <<<"$(cpu_ticks "$SERVER_CPU")"
		read -r wrk_busy0 wrk_total0 <<<"$(cpu_ticks "$WRK_CPU")"
		load "$t" "$DURATION" "$out"
		read -r srv_busy1 srv_total1 <<<"$(cpu_ticks "$SERVER_CPU")"
		read -r wrk_busy1 wrk_total1 <<<"$(cpu_ticks "$WRK_CPU")"
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
		printf '  %-8s %12s %10s %10s %8s %8s%% %8s%%\n' "$t" "$v" "$v50" "$v99" "$verr" "$srv_cpu" "$wrk_cpu"
		rounds_md+="| $((r + 1)) | $t | $v | $v50 | $v99 | $verr / $vreq | $srv_cpu % | $wrk_cpu % |"$'\n'
	done
done

# --- summary ----------------------------------------------------------------

declare -A med_rps med_p50 med_p99
for t in "${targets[@]}"; do
	# shellcheck disable=SC2086 # word splitting of the value lists is intended
	{
		med_rps[$t]=$(median %.2f ${rps[$t]})
		med_p50[$t]=$(median %.3f ${p50[$t]})
		med_p99[$t]=$(median %.3f ${p99[$t]})
	}
done

commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo "no commit yet")
if [[ -n $(git -C "$root" status --porcelain 2>/dev/null) ]]; then
	commit+=" (uncommitted changes)"
fi
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
wrk_version=$(wrk -v 2>&1 | awk 'NR == 1 { print $2 }' || true)
servers="demo-upstream (GOMAXPROCS=$BACKEND_GOMAXPROCS)"
has_target altair && servers+=", Altair (GOMAXPROCS=$ALTAIR_GOMAXPROCS)"
has_target altair-auth && servers+=", Altair with JWT + rate limit (GOMAXPROCS=$ALTAIR_GOMAXPROCS)"
has_target nginx && servers+=", $nginx_version (1 worker)"

summary=$tmp/summary.md
{
	printf '# Benchmark: latest run\n\n'
	# shellcheck disable=SC2016 # the backquotes are markdown, not expansions
	printf 'Written by `bench/run.sh` (`make bench`) on %s and overwritten by every run; see bench/README.md.\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
	printf '| setting | value |\n|---|---|\n'
	printf '| commit | %s |\n' "$commit"
	printf '| machine | %s, %s CPUs online, %s |\n' "${cpu_model:-unknown CPU}" "$ncpu" "$(uname -sr)"
	printf '| load | wrk %s on CPU %s: %s thread(s), %s connections, GET %s (%s-byte body), HTTP/1.1 keep-alive |\n' \
		"$wrk_version" "$WRK_CPU" "$THREADS" "$CONNS" "$path" "$SIZE"
	printf '| servers | on CPU %s: %s |\n' "$SERVER_CPU" "$servers"
	printf '| rounds | %s × %s per target, order rotating each round, after a %s warm-up per target |\n' "$ROUNDS" "$DURATION" "$WARMUP"
	printf '| idle check | CPU %s %s%% busy, CPU %s %s%% busy before the load |\n\n' "$SERVER_CPU" "$idle_srv" "$WRK_CPU" "$idle_wrk"

	printf '## Medians over %s round(s)\n\n' "$ROUNDS"
	printf '| target | req/s | p50 ms | p99 ms | errors (all rounds) |\n|---|---:|---:|---:|---:|\n'
	for t in "${targets[@]}"; do
		printf '| %s | %s | %s | %s | %s |\n' "$t" "${med_rps[$t]}" "${med_p50[$t]}" "${med_p99[$t]}" "${errors[$t]}"
	done

	printf '\n## Ratios (of medians)\n\n| ratio | value |\n|---|---:|\n'
	has_target altair && has_target direct && printf '| altair / direct, req/s | %s |\n' "$(ratio "${med_rps[altair]}" "${med_rps[direct]}")"
	has_target altair-auth && has_target altair && printf '| altair-auth / altair, req/s (edge + auth cost) | %s |\n' "$(ratio "${med_rps[altair-auth]}" "${med_rps[altair]}")"
	has_target nginx && has_target direct && printf '| nginx / direct, req/s | %s |\n' "$(ratio "${med_rps[nginx]}" "${med_rps[direct]}")"
	has_target altair && has_target nginx && {
		printf '| altair / nginx, req/s | %s |\n' "$(ratio "${med_rps[altair]}" "${med_rps[nginx]}")"
		printf '| altair / nginx, p99 latency | %s |\n' "$(ratio "${med_p99[altair]}" "${med_p99[nginx]}")"
	}
	has_target altair || printf '| (altair not measured in this run) | |\n'

	printf '\n## Rounds\n\n| round | target | req/s | p50 ms | p99 ms | errors / requests | server CPU busy | wrk CPU busy |\n|---:|---|---:|---:|---:|---:|---:|---:|\n'
	printf '%s' "$rounds_md"

	if [[ -n $noisy ]]; then
		printf '\n**Warning:** %s\n' "$noisy"
	fi
	for t in "${targets[@]}"; do
		if ((errors[$t] > 0)); then
			printf '\n**Warning:** %s had %s failed requests (non-2xx/3xx or socket errors); its numbers are suspect.\n' "$t" "${errors[$t]}"
		fi
	done
} >"$summary"

printf '\n'
cat "$summary"
cp "$summary" "$results/latest.md"
elapsed=$((SECONDS - started))
printf '\nWrote %s\nTotal runtime: %dm%02ds\n' "${results#"$root"/}/latest.md" $((elapsed / 60)) $((elapsed % 60))
