package cache

import (
	"net/http"
	"reflect"
	"testing"
	"time"
)

func TestFreshen(t *testing.T) {
	t.Parallel()
	e := &Entry{
		Status: 200,
		Header: http.Header{
			"Etag": {`"a"`}, "Cache-Control": {"max-age=10"}, "X-Old": {"1"},
			"Age": {"5"}, "Last-Modified": {httpDate(t0.Add(-time.Hour))},
		},
		Body: []byte("body"), RequestTime: t0, ResponseTime: t0,
	}
	tests := []struct {
		name string
		give http.Header
		ok   bool
		want http.Header
	}{
		{"same strong ETag", http.Header{
			"Etag": {`"a"`}, "Cache-Control": {"max-age=60"}, "Content-Length": {"0"},
			"X-Request-Id": {"r"}, "X-Cache": {"HIT"}, "X-New": {"2"},
		}, true, http.Header{
			"Etag": {`"a"`}, "Cache-Control": {"max-age=60"}, "X-Old": {"1"}, "X-New": {"2"},
			"Last-Modified": {httpDate(t0.Add(-time.Hour))},
		}},
		{"weak ETag of the same tag", http.Header{"Etag": {`W/"a"`}}, true, nil},
		{"other ETag", http.Header{"Etag": {`"b"`}}, false, nil},
		{"other Last-Modified", http.Header{"Last-Modified": {httpDate(t0)}}, false, nil},
		{"no validator", http.Header{"Age": {"3"}}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := e.freshen(tt.give, t0.Add(time.Minute), t0.Add(time.Minute))
			if ok != tt.ok {
				t.Fatalf("freshen(%v) ok = %v, want %v", tt.give, ok, tt.ok)
			}
			if !ok {
				return
			}
			if tt.want != nil && !reflect.DeepEqual(got.Header, tt.want) {
				t.Errorf("freshen(%v) header = %v, want %v", tt.give, got.Header, tt.want)
			}
			if string(got.Body) != "body" || !got.ResponseTime.Equal(t0.Add(time.Minute)) {
				t.Errorf("freshen kept body %q, response time %v", got.Body, got.ResponseTime)
			}
			if _, has := tt.give["Age"]; has != (got.Header.Get("Age") != "") {
				t.Errorf("Age = %q after a 304 with Age %q", got.Header.Get("Age"), tt.give.Get("Age"))
			}
		})
	}
	if e.Header.Get("X-New") != "" || e.Header.Get("Cache-Control") != "max-age=10" {
		t.Errorf("freshen changed the stored entry: %v", e.Header)
	}
}

func TestEntryEncoding(t *testing.T) {
	t.Parallel()
	e := &Entry{
		Status:       203,
		Header:       http.Header{"A": {"1", "2"}, "Empty": {""}, "Etag": {`"x"`}},
		Body:         []byte("hello"),
		RequestTime:  t0,
		ResponseTime: t0.Add(1500 * time.Millisecond),
		Variant:      "Accept:text/html\nOrigin\n",
	}
	b, err := e.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Entry
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if got.Status != e.Status || !reflect.DeepEqual(got.Header, e.Header) || string(got.Body) != "hello" ||
		!got.RequestTime.Equal(e.RequestTime) || !got.ResponseTime.Equal(e.ResponseTime) || got.Variant != e.Variant {
		t.Errorf("round trip = %+v, want %+v", &got, e)
	}
	for i := range b {
		var x Entry
		if err := x.UnmarshalBinary(b[:i]); err == nil {
			t.Errorf("UnmarshalBinary(first %d bytes) = nil, want an error", i)
		}
	}
}

func TestVariantKey(t *testing.T) {
	t.Parallel()
	names := varyNames(http.Header{"Vary": {"accept-language, X-Tenant", " Accept-Language"}, "Content-Encoding": {"gzip"}})
	if want := []string{"Accept-Encoding", "Accept-Language", "X-Tenant"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("varyNames = %q, want %q", names, want)
	}
	req := http.Header{"Accept-Language": {"en ", " fr"}, "Accept-Encoding": {"gzip"}}
	v := variantKey(names, req)
	if want := "Accept-Encoding:gzip\nAccept-Language:en, fr\nX-Tenant\n"; v != want {
		t.Errorf("variantKey = %q, want %q", v, want)
	}
	tests := []struct {
		give http.Header
		want bool
	}{
		{req, true},
		{http.Header{"Accept-Language": {"en, fr"}, "Accept-Encoding": {"gzip"}}, true},
		{http.Header{"Accept-Language": {"en,fr"}, "Accept-Encoding": {"gzip"}}, false},
		{http.Header{"Accept-Language": {"en"}, "Accept-Encoding": {"gzip"}}, false},
		{http.Header{"Accept-Language": {"en, fr"}, "Accept-Encoding": {"gzip"}, "X-Tenant": {""}}, false},
		{http.Header{"Accept-Language": {"en, fr"}}, false},
	}
	for _, tt := range tests {
		if got := matchVariant(v, tt.give); got != tt.want {
			t.Errorf("matchVariant(%q, %v) = %v, want %v", v, tt.give, got, tt.want)
		}
	}
	if varyNames(http.Header{"Content-Encoding": {"identity"}}) != nil {
		t.Error("identity coding varies on Accept-Encoding")
	}
}

func TestNoneMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give []string
		etag string
		want bool
	}{
		{[]string{`"a"`}, `"a"`, true},
		{[]string{`W/"a"`}, `"a"`, true},
		{[]string{`"a"`}, `W/"a"`, true},
		{[]string{`"b", "a"`}, `"a"`, true},
		{[]string{`"b"`, `"a"`}, `"a"`, true},
		{[]string{`"x,y", "a"`}, `"a"`, true},
		{[]string{`"x,y"`}, `"y"`, false},
		{[]string{`*`}, `"a"`, true},
		{[]string{`*`}, ``, true},
		{[]string{`"a"`}, ``, false},
		{[]string{`a`}, `a`, false},
		{[]string{`"ab"`}, `"a"`, false},
		{[]string{`"a`}, `"a"`, false},
	}
	for _, tt := range tests {
		if got := noneMatch(tt.give, tt.etag); got != tt.want {
			t.Errorf("noneMatch(%q, %q) = %v, want %v", tt.give, tt.etag, got, tt.want)
		}
	}
}

func TestSelectEntry(t *testing.T) {
	t.Parallel()
	mk := func(variant string, at time.Duration) *Entry {
		return &Entry{Status: 200, Variant: variant, ResponseTime: t0.Add(at)}
	}
	plain, plainNewer := mk("", 0), mk("", time.Second)
	en, fr := mk("Accept-Language:en\n", 2*time.Second), mk("Accept-Language:fr\n", 3*time.Second)
	tests := []struct {
		variants []*Entry
		header   http.Header
		want     *Entry
	}{
		{nil, http.Header{}, nil},
		{[]*Entry{en, fr}, http.Header{"Accept-Language": {"fr"}}, fr},
		{[]*Entry{en, fr}, http.Header{}, nil},
		{[]*Entry{plain, en}, http.Header{"Accept-Language": {"en"}}, en}, // most recent of both matches
		{[]*Entry{en, plainNewer, plain}, http.Header{"Accept-Language": {"de"}}, plainNewer},
	}
	for i, tt := range tests {
		if got := selectEntry(tt.variants, tt.header); got != tt.want {
			t.Errorf("%d: selectEntry = %+v, want %+v", i, got, tt.want)
		}
	}
}

func TestEntryAge(t *testing.T) {
	t.Parallel()
	e := &Entry{Status: 200, Header: http.Header{"Age": {"10"}, "Date": {httpDate(t0)}, "Cache-Control": {"max-age=20"}},
		RequestTime: t0, ResponseTime: t0}
	if got := e.age(t0.Add(5 * time.Second)); got != 15*time.Second {
		t.Errorf("age after 5s = %v, want 15s", got)
	}
	if !e.Fresh(t0.Add(9*time.Second), 0) || e.Fresh(t0.Add(10*time.Second), 0) {
		t.Error("Fresh disagrees with max-age=20 and Age: 10")
	}
}
