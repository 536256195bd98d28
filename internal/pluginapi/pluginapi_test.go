package pluginapi

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestNewRegistry(t *testing.T) {
	mw := func(Config) (Middleware, error) { return func(h http.Handler) http.Handler { return h }, nil }
	r, err := NewRegistry(Factory{Name: "wasm", New: mw}, Factory{Name: "stamp.v2", New: mw})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Lookup("stamp.v2"); !ok {
		t.Error("Lookup(stamp.v2) = false")
	}
	if _, ok := r.Lookup("nope"); ok {
		t.Error("Lookup(nope) = true")
	}
	if got := r.Names(); !slices.Equal(got, []string{"wasm", "stamp.v2"}) {
		t.Errorf("Names() = %v", got)
	}
	for _, tt := range []struct {
		name string
		fs   []Factory
		want string
	}{
		{"twice", []Factory{{Name: "wasm", New: mw}, {Name: "wasm", New: mw}}, "registered twice"},
		{"upper case", []Factory{{Name: "Stamp", New: mw}}, "lower-case"},
		{"leading dash", []Factory{{Name: "-x", New: mw}}, "lower-case"},
		{"empty", []Factory{{New: mw}}, "lower-case"},
		{"no New", []Factory{{Name: "x"}}, "no New function"},
	} {
		if _, err := NewRegistry(tt.fs...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: NewRegistry error %v, want %q", tt.name, err, tt.want)
		}
	}
	var nilReg *Registry
	if _, ok := nilReg.Lookup("x"); ok || nilReg.Names() != nil {
		t.Error("a nil Registry has plugins")
	}
}
