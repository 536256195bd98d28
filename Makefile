# Altair — build, run, test, benchmark.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck

.PHONY: all build run test lint bench bench-go pgo fuzz release clean

all: build

## build: static binaries in bin/ (altair and the demo upstream)
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/altair ./cmd/altair
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/demo-upstream ./cmd/demo-upstream

## run: the gateway on examples/altair.yaml (port 9777) in front of two demo upstreams
run: build
	scripts/run-demo.sh

## test: every test, with the race detector (installs what the tests need)
test:
	scripts/test.sh

## lint: gofmt, go vet and staticcheck must be clean
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	@test -x $(STATICCHECK) || $(GO) install honnef.co/go/tools/cmd/staticcheck@latest
	$(STATICCHECK) ./...
	cd deploy && $(GO) vet ./... && $(STATICCHECK) ./...
	GOOS=wasip1 GOARCH=wasm $(GO) vet ./examples/plugins/wasm/...
	GOOS=wasip1 GOARCH=wasm $(STATICCHECK) ./examples/plugins/wasm/...

## bench-go: in-process benchmarks (ns/op, allocs/op)
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./...

## bench: in-process benchmarks, then wrk: direct backend vs Altair vs nginx
bench: bench-go
	bench/run.sh

## pgo: refresh cmd/altair/default.pgo, the CPU profile altair is built with (see bench/README.md)
pgo:
	bench/pgo.sh

## fuzz: run each fuzz target for FUZZTIME (default 30s)
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) ./internal/config/
	$(GO) test -run '^$$' -fuzz '^FuzzMatch$$' -fuzztime $(FUZZTIME) ./internal/router/
	$(GO) test -run '^$$' -fuzz '^FuzzCleanPath$$' -fuzztime $(FUZZTIME) ./internal/router/
	$(GO) test -run '^$$' -fuzz '^FuzzClientIP$$' -fuzztime $(FUZZTIME) ./internal/edge/
	$(GO) test -run '^$$' -fuzz '^FuzzLists$$' -fuzztime $(FUZZTIME) ./internal/edge/
	$(GO) test -run '^$$' -fuzz '^FuzzParseToken$$' -fuzztime $(FUZZTIME) ./internal/auth/
	$(GO) test -run '^$$' -fuzz '^FuzzNegotiate$$' -fuzztime $(FUZZTIME) ./internal/compress/

## release: static binaries for linux, darwin and windows on amd64 and arm64 in dist/, with SHA256SUMS
release:
	VERSION=$(VERSION) scripts/release.sh

clean:
	rm -rf bin bench/.bin dist
