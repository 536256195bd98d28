#!/usr/bin/env bash
# Cross-platform builds of Altair, for every platform in $platforms below.
#
#   scripts/release.sh          dist/altair_<os>_<arch>[.exe] and dist/SHA256SUMS (make release)
#   scripts/release.sh check    cross-compile ./cmd/... for each platform, writing nothing,
#                               so a platform-specific break fails (make test runs this)
#
# VERSION (default: git describe --tags --always --dirty) is what `altair version`
# and altair_build_info report.
set -euo pipefail
cd "$(dirname "$0")/.."

platforms=(linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64)
# Static binaries: no cgo, so no libc to match (darwin binaries still link
# libSystem dynamically, as every macOS program must).
export CGO_ENABLED=0

check() {
	local logs failed=()
	logs=$(mktemp -d)
	trap 'rm -rf "$logs"' RETURN
	# -trimpath as in release builds: the build cache then serves every
	# checkout (a CI clone's path differs each time) and `make release`.
	# Two at a time: most of the time is the linker, one process per core.
	local i=0 pids=() names=()
	for p in "${platforms[@]}"; do
		GOOS=${p%/*} GOARCH=${p#*/} go build -trimpath -o /dev/null ./cmd/... >"$logs/${p/\//_}.log" 2>&1 &
		pids+=($!) names+=("$p")
		if (( ++i % 2 == 0 )); then
			for j in "${!pids[@]}"; do wait "${pids[$j]}" || failed+=("${names[$j]}"); done
			pids=() names=()
		fi
	done
	for j in "${!pids[@]}"; do wait "${pids[$j]}" || failed+=("${names[$j]}"); done
	for p in "${failed[@]}"; do
		echo "cross-compile: GOOS=${p%/*} GOARCH=${p#*/} go build ./cmd/... failed:" >&2
		cat "$logs/${p/\//_}.log" >&2
	done
	if (( ${#failed[@]} > 0 )); then
		return 1
	fi
	echo "cross-compile: ./cmd/... builds for ${platforms[*]}"
}

release() {
	local version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
	rm -rf dist
	mkdir -p dist
	for p in "${platforms[@]}"; do
		local os=${p%/*} arch=${p#*/}
		local out=dist/altair_${os}_${arch}
		[[ $os == windows ]] && out+=.exe
		GOOS=$os GOARCH=$arch go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$out" ./cmd/altair
		echo "$out"
	done
	(
		cd dist
		if command -v sha256sum >/dev/null; then
			sha256sum altair_* >SHA256SUMS
		else
			shasum -a 256 altair_* >SHA256SUMS
		fi
	)
	echo "dist/SHA256SUMS (version $version)"
}

case ${1:-release} in
check) check ;;
release) release ;;
*)
	echo "usage: $0 [release|check]" >&2
	exit 2
	;;
esac
