package compress

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestCompressible(t *testing.T) {
	t.Parallel()
	def := mustNew(t, Options{})
	custom := mustNew(t, Options{Types: []string{"application/*", "*/*+yaml", "text/event-stream", "image/png"}})
	tests := []struct {
		c    *Compressor
		give string
		want bool
	}{
		{def, "text/html", true},
		{def, "text/html; charset=utf-8", true},
		{def, "TEXT/Plain;charset=UTF-8", true},
		{def, " text/css ", true},
		{def, "application/json", true},
		{def, "application/problem+json", true},
		{def, "application/vnd.api+json; charset=utf-8", true},
		{def, "application/ld+json", true},
		{def, "application/xml", true},
		{def, "application/atom+xml", true},
		{def, "application/javascript", true},
		{def, "application/x-ndjson", true},
		{def, "application/wasm", true},
		{def, "image/svg+xml", true},
		{def, "image/x-icon", true},
		{def, "font/ttf", true},
		{def, "", false},
		{def, "json", false},
		{def, "/json", false},
		{def, "text/", false},
		{def, "text/event-stream", false},
		{def, "image/png", false},
		{def, "image/jpeg", false},
		{def, "image/webp", false},
		{def, "video/mp4", false},
		{def, "audio/mpeg", false},
		{def, "font/woff2", false},
		{def, "application/zip", false},
		{def, "application/gzip", false},
		{def, "application/x-7z-compressed", false},
		{def, "application/octet-stream", false},
		{def, "application/pdf", false},
		{def, "application/grpc", false},
		{def, "application/grpc+json", false},
		{def, "application/grpc-web+json", false},
		{def, "multipart/byteranges; boundary=x", false},
		{def, "application/x-protobuf", false},
		// A wildcard never reaches the built-in exclusions; an exact entry does.
		{custom, "application/pdf", false},
		{custom, "application/zip", false},
		{custom, "application/epub+zip", false},
		{custom, "application/grpc+json", false},
		{custom, "application/x-protobuf", true},
		{custom, "text/vnd.foo+yaml", true},
		{custom, "text/yaml", false},
		{custom, "text/event-stream", true},
		{custom, "image/png", true},
		{custom, "image/jpeg", false},
		{custom, "text/html", false},
	}
	for pass := range 2 { // the second pass answers from the cache
		for _, tt := range tests {
			if got := tt.c.Compressible(tt.give); got != tt.want {
				t.Errorf("pass %d: Compressible(%q) = %v, want %v (types %v)", pass, tt.give, got, tt.want, tt.c.types)
			}
		}
	}
}

// TestCompressibleCacheBounded: past maxCachedTypes values the cache takes
// no more, and answers stay right for values in it and out of it.
func TestCompressibleCacheBounded(t *testing.T) {
	t.Parallel()
	c := mustNew(t, Options{})
	for pass := range 2 {
		for i := range maxCachedTypes + 50 {
			kind, want := "text/plain", true
			if i%2 == 1 {
				kind, want = "image/png", false
			}
			ct := fmt.Sprintf("%s%d; boundary=%d", kind, i, i) // text/plain7 is text/*
			if got := c.Compressible(ct); got != want {
				t.Fatalf("pass %d: Compressible(%q) = %v, want %v", pass, ct, got, want)
			}
		}
	}
	if n := c.types.seen.n.Load(); n != maxCachedTypes {
		t.Errorf("cache holds %d values, want %d", n, maxCachedTypes)
	}
}

// TestCompressibleCacheKey: parameters are not part of the cache's key, so
// values differing only in them take one entry; an overlong type is
// answered without being kept.
func TestCompressibleCacheKey(t *testing.T) {
	t.Parallel()
	c := mustNew(t, Options{})
	for i := range 50 {
		if !c.Compressible(fmt.Sprintf("text/html; charset=utf-8; x=%d", i)) {
			t.Fatal("text/html with parameters is not compressible")
		}
	}
	long := "application/" + strings.Repeat("x", maxCachedTypeLen) + "+json"
	if !c.Compressible(long) {
		t.Fatal("a long +json type is not compressible")
	}
	if n := c.types.seen.n.Load(); n != 1 {
		t.Errorf("cache holds %d values, want 1 (text/html)", n)
	}
}

func TestCompressibleAllocs(t *testing.T) {
	c := mustNew(t, Options{})
	for _, ct := range []string{"application/json; charset=utf-8", "image/png", "application/vnd.api+json"} {
		if n := testing.AllocsPerRun(100, func() { c.Compressible(ct) }); n != 0 {
			t.Errorf("Compressible(%q) allocates %v times, want 0", ct, n)
		}
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give Options
		want []error // nil: valid
	}{
		{"zero value", Options{}, nil},
		{"all set", Options{Encodings: []string{"GZIP", " br "}, MinSize: 1, GzipLevel: 9, BrotliLevel: 11, ZstdLevel: 22, Types: []string{"*/*"}}, nil},
		{"unknown encoding", Options{Encodings: []string{"gzip", "deflate"}}, []error{ErrUnknownEncoding}},
		{"identity is no encoding", Options{Encodings: []string{"identity"}}, []error{ErrUnknownEncoding}},
		{"duplicate", Options{Encodings: []string{"gzip", "gzip"}}, []error{ErrUnknownEncoding}},
		{"gzip level", Options{GzipLevel: 10}, []error{ErrLevel}},
		{"brotli level", Options{BrotliLevel: -1}, []error{ErrLevel}},
		{"zstd level", Options{ZstdLevel: 23}, []error{ErrLevel}},
		{"level of a disabled coding is still checked", Options{Encodings: []string{"gzip"}, ZstdLevel: 99}, []error{ErrLevel}},
		{"negative min size", Options{MinSize: -1}, []error{ErrMinSize}},
		{"bad types", Options{Types: []string{"json", "*/json", "te*t/html", "text/ht*ml", "text/*+", "application/*; q=1"}}, []error{ErrType}},
		{"every problem at once", Options{Encodings: []string{"lz4"}, GzipLevel: 11, MinSize: -5, Types: []string{"x"}},
			[]error{ErrUnknownEncoding, ErrLevel, ErrMinSize, ErrType}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(tt.give)
			if tt.want == nil {
				if err != nil || c == nil {
					t.Fatalf("New(%+v) = %v, %v, want a Compressor", tt.give, c, err)
				}
				return
			}
			if c != nil || err == nil {
				t.Fatalf("New(%+v) = %v, %v, want an error", tt.give, c, err)
			}
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("New(%+v) error = %v, want it to match %v", tt.give, err, w)
				}
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := mustNew(t, Options{})
	if got, want := c.Encodings(), []string{"zstd", "gzip", "br"}; !slices.Equal(got, want) {
		t.Errorf("Encodings() = %v, want %v", got, want)
	}
	if got := c.MinSize(); got != DefaultMinSize {
		t.Errorf("MinSize() = %d, want %d", got, DefaultMinSize)
	}
	DefaultEncodings()[0], DefaultTypes()[0] = "changed", "changed"
	if DefaultEncodings()[0] != "zstd" || DefaultTypes()[0] != "text/*" {
		t.Error("the defaults can be changed through the slices returned")
	}
	// Adding a type to the defaults, as a config's extra types would.
	sse := mustNew(t, Options{Types: append(DefaultTypes(), "text/event-stream")})
	for _, ct := range []string{"text/event-stream", "application/json", "text/html"} {
		if !sse.Compressible(ct) {
			t.Errorf("defaults + text/event-stream: Compressible(%q) = false, want true", ct)
		}
	}
}

func TestOptionsMerge(t *testing.T) {
	t.Parallel()
	base := Options{Encodings: []string{"zstd", "gzip"}, MinSize: 512, GzipLevel: 6, BrotliLevel: 4, ZstdLevel: 3, Types: []string{"text/*"}}
	tests := []struct {
		name string
		over Options
		want Options
	}{
		{"empty override", Options{}, base},
		{"levels only", Options{BrotliLevel: 9, ZstdLevel: 1},
			Options{Encodings: base.Encodings, MinSize: 512, GzipLevel: 6, BrotliLevel: 9, ZstdLevel: 1, Types: base.Types}},
		{"lists replaced", Options{Encodings: []string{"br"}, Types: []string{"application/json"}, MinSize: 2048, GzipLevel: 1},
			Options{Encodings: []string{"br"}, MinSize: 2048, GzipLevel: 1, BrotliLevel: 4, ZstdLevel: 3, Types: []string{"application/json"}}},
	}
	for _, tt := range tests {
		got := base.Merge(tt.over)
		if !slices.Equal(got.Encodings, tt.want.Encodings) || !slices.Equal(got.Types, tt.want.Types) ||
			got.MinSize != tt.want.MinSize || got.GzipLevel != tt.want.GzipLevel ||
			got.BrotliLevel != tt.want.BrotliLevel || got.ZstdLevel != tt.want.ZstdLevel {
			t.Errorf("%s: Merge(%+v) = %+v, want %+v", tt.name, tt.over, got, tt.want)
		}
	}
}
