package router

import (
	"errors"
	"maps"
	"net/http"
	"net/url"
	"path"
	"strings"
	"testing"
)

// FuzzMatch builds a router from a line-based route list and matches one
// request against it. Each line is a pattern, ">/prefix" for a prefix or
// "/path" for a path, followed by optional fields: "host=H", "method=M",
// "h=V" (header X-A must be V) and "q:K=V" (query K must be V). The result must
// agree with the naive reference matcher, which also proves that the matched
// route's prefix or path covers the cleaned path.
func FuzzMatch(f *testing.F) {
	f.Fuzz(func(t *testing.T, routes, target, host, method, header string) {
		specs := parseFuzzRoutes(routes)
		rt, err := New(specs)
		var errs Errors
		if err != nil && !errors.As(err, &errs) {
			t.Fatalf("New = %v, want Errors", err)
		}
		if err != nil {
			// Drop the bad specs and try again, so that a route list with one
			// bad line still exercises matching.
			specs = dropSpecs(specs, errs)
			if rt, err = New(specs); err != nil {
				t.Fatalf("New(%+v) after dropping the bad specs = %v", specs, err)
			}
		}
		if method == "" {
			method = http.MethodGet
		}
		rawPath, rawQuery, _ := strings.Cut(target, "?")
		r := &http.Request{
			Method: method,
			Host:   host,
			URL:    &url.URL{Path: rawPath, RawQuery: rawQuery},
			Header: http.Header{},
		}
		if header != "" {
			r.Header.Set("X-A", header)
		}
		path := CleanPath(rawPath)
		var p Params
		got := rt.Match(r, path, &p)
		want, wantPar := refMatch(specs, r, path)
		if got != want || !maps.Equal(paramsMap(&p), wantPar) {
			t.Fatalf("specs %+v\nMatch(%s %s %s) = %d %v, want %d %v", specs, method, host, target, got, paramsMap(&p), want, wantPar)
		}
	})
}

// dropSpecs removes the specs that errs complain about.
func dropSpecs(specs []Spec, errs Errors) []Spec {
	bad := map[int]bool{}
	for _, e := range errs {
		bad[e.Index] = true
	}
	var out []Spec
	for i, s := range specs {
		if !bad[i] {
			out = append(out, s)
		}
	}
	return out
}

func parseFuzzRoutes(routes string) []Spec {
	var specs []Spec
	for line := range strings.Lines(routes) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		var s Spec
		if pfx, ok := strings.CutPrefix(fields[0], ">"); ok {
			s.Prefix = pfx
		} else {
			s.Path = fields[0]
		}
		for _, f := range fields[1:] {
			switch {
			case strings.HasPrefix(f, "host="):
				s.Hosts = append(s.Hosts, f[len("host="):])
			case strings.HasPrefix(f, "method="):
				s.Methods = append(s.Methods, f[len("method="):])
			case strings.HasPrefix(f, "h="):
				s.Headers = map[string]string{"X-A": f[len("h="):]}
			case strings.HasPrefix(f, "q:"):
				k, v, _ := strings.Cut(f[len("q:"):], "=")
				if s.Query == nil {
					s.Query = map[string]string{}
				}
				s.Query[k] = v
			}
		}
		specs = append(specs, s)
	}
	return specs
}

// FuzzCleanPath checks that CleanPath is idempotent, rooted, free of dot and
// empty segments, keeps a trailing slash and otherwise agrees with path.Clean.
func FuzzCleanPath(f *testing.F) {
	f.Fuzz(func(t *testing.T, give string) {
		checkCleanPath(t, give)
		got := CleanPath(give)
		if want := path.Clean("/" + give); strings.TrimSuffix(got, "/") != strings.TrimSuffix(want, "/") {
			t.Fatalf("CleanPath(%q) = %q, want %q up to a trailing slash", give, got, want)
		}
	})
}
