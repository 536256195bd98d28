package cache

import (
	"bytes"
	"net/http"
	"reflect"
	"testing"
)

// FuzzParseDirectives: Cache-Control comes from clients and origins. Parsing
// never panics, keeps every value within [0, 2^31], and two field lines
// mean what their directives mean together.
func FuzzParseDirectives(f *testing.F) {
	f.Add("max-age=60, public", `no-cache="Set-Cookie"`)
	f.Add(`private="a,b", max-age="5`, "max-stale")
	f.Add("s-maxage=99999999999999999999999", "max-stale=5")
	f.Fuzz(func(t *testing.T, a, b string) {
		da, db := parseDirectives([]string{a}), parseDirectives([]string{b})
		both := parseDirectives([]string{a, b})
		for _, d := range []directives{da, db, both} {
			for _, v := range []int64{d.maxAge, d.sMaxAge, d.maxStale, d.minFresh, d.swr, d.sie} {
				if v < 0 || v > maxDelta {
					t.Fatalf("parseDirectives(%q, %q): value %d out of range", a, b, v)
				}
			}
		}
		const any = ccMaxStaleAny | ccMaxStale
		if got, want := both.flags&^any, (da.flags|db.flags)&^any; got != want {
			t.Errorf("flags of %q and %q together = %b, want %b", a, b, got, want)
		}
		if da.has(ccMaxAge) && db.has(ccMaxAge) && both.maxAge != min(da.maxAge, db.maxAge) {
			t.Errorf("max-age of %q and %q together = %d, want the smaller of %d and %d", a, b, both.maxAge, da.maxAge, db.maxAge)
		}
		noneMatch([]string{a, b}, `"x"`)
		matchVariant(a, http.Header{"A": {b}})
	})
}

// FuzzEntryUnmarshal: a store's bytes decode to an entry or an error, and
// what decodes encodes back the same.
func FuzzEntryUnmarshal(f *testing.F) {
	e := &Entry{Status: 200, Header: http.Header{"A": {"b"}}, Body: []byte("x"), Variant: "A:b\n"}
	b, _ := e.MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var got Entry
		if err := got.UnmarshalBinary(data); err != nil {
			return
		}
		again, err := got.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back Entry
		if err := back.UnmarshalBinary(again); err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if back.Status != got.Status || !reflect.DeepEqual(back.Header, got.Header) || !bytes.Equal(back.Body, got.Body) || back.Variant != got.Variant {
			t.Errorf("round trip changed the entry: %+v, want %+v", &back, &got)
		}
	})
}
