package hopbyhop

import (
	"net/http"
	"slices"
	"testing"
)

func TestRemove(t *testing.T) {
	h := http.Header{
		"Connection":          {"X-Private, keep-alive", "x-other"},
		"X-Private":           {"p"},
		"X-Other":             {"o"},
		"Keep-Alive":          {"timeout=5"},
		"Te":                  {"trailers"},
		"Proxy-Authorization": {"Basic eA=="},
		"Transfer-Encoding":   {"chunked"},
		"Upgrade":             {"websocket"},
		"Accept":              {"*/*"},
	}
	Remove(h)
	if len(h) != 1 || h.Get("Accept") != "*/*" {
		t.Fatalf("after Remove: %v, want only Accept", h)
	}
	// Fewer fields than hop-by-hop names: the same result.
	small := http.Header{
		"Connection": {"X-Private"},
		"X-Private":  {"p"},
		"Keep-Alive": {"timeout=5"},
		"Upgrade":    {"h2c"},
		"Accept":     {"*/*"},
	}
	Remove(small)
	if len(small) != 1 || small.Get("Accept") != "*/*" {
		t.Fatalf("after Remove on a small header: %v, want only Accept", small)
	}
}

func TestIsAndNamed(t *testing.T) {
	for _, k := range Fields {
		if !Is(k) {
			t.Errorf("Is(%q) = false", k)
		}
	}
	for _, k := range []string{"Accept", "X-Forwarded-For", "Content-Length", "connection"} {
		if Is(k) {
			t.Errorf("Is(%q) = true", k)
		}
	}
	got := Named(http.Header{"Connection": {" x-a ,, X-B", "close"}})
	if want := []string{"X-A", "X-B", "Close"}; !slices.Equal(got, want) {
		t.Errorf("Named = %q, want %q", got, want)
	}
	if Named(http.Header{}) != nil {
		t.Error("Named without a Connection header is not nil")
	}
}
