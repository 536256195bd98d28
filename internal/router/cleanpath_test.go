package router

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func TestCleanPath(t *testing.T) {
	t.Parallel()
	tests := []struct{ give, want string }{
		{"", "/"},
		{"/", "/"},
		{"/a", "/a"},
		{"/a/", "/a/"},
		{"a/b", "/a/b"},
		{"/api/a/../b", "/api/b"},
		{"/../../etc/passwd", "/etc/passwd"},
		{"//a///b", "/a/b"},
		{"/a/./b/", "/a/b/"},
		{"/a/..", "/"},
		{"/a/../", "/"},
		{"/a/b/..", "/a"},
		{"/a/b/../", "/a/"},
		{"/a/.", "/a"},
		{"/a/./", "/a/"},
		{"/.", "/"},
		{"/..", "/"},
		{"//", "/"},
		{".", "/"},
		{"..", "/"},
		{"/a//", "/a/"},
		{"/...", "/..."},
		{"/a/.b/..c", "/a/.b/..c"},
		{"/a\\..\\b", "/a\\..\\b"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			t.Parallel()
			if got := CleanPath(tt.give); got != tt.want {
				t.Errorf("CleanPath(%q) = %q, want %q", tt.give, got, tt.want)
			}
		})
	}
}

func TestCleanPathAllocs(t *testing.T) {
	for _, p := range []string{"/", "/api/v1/users/7", "/a/b/"} {
		if n := testing.AllocsPerRun(100, func() { CleanPath(p) }); n != 0 {
			t.Errorf("CleanPath(%q) allocs = %v, want 0", p, n)
		}
	}
}

func TestCleanPathProperties(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	parts := []string{"/", "/", "/", ".", "..", "a", "b", "%2e"}
	for range 20000 {
		var b strings.Builder
		for range rng.IntN(12) {
			b.WriteString(parts[rng.IntN(len(parts))])
		}
		checkCleanPath(t, b.String())
	}
}

// checkCleanPath checks the properties every CleanPath result has.
func checkCleanPath(t *testing.T, give string) {
	t.Helper()
	got := CleanPath(give)
	if again := CleanPath(got); again != got {
		t.Fatalf("CleanPath(%q) = %q, but CleanPath(%q) = %q; want idempotent", give, got, got, again)
	}
	if !strings.HasPrefix(got, "/") {
		t.Fatalf("CleanPath(%q) = %q, want a leading /", give, got)
	}
	segs := strings.Split(got[1:], "/")
	for i, s := range segs {
		if s == "." || s == ".." || s == "" && i < len(segs)-1 {
			t.Fatalf("CleanPath(%q) = %q, has segment %q", give, got, s)
		}
	}
	if strings.HasSuffix(give, "/") && !strings.HasSuffix(got, "/") {
		t.Fatalf("CleanPath(%q) = %q, lost the trailing slash", give, got)
	}
}
