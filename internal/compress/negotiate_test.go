package compress

import (
	"net/http"
	"strings"
	"testing"
)

func TestNegotiate(t *testing.T) {
	t.Parallel()
	all := mustNew(t, Options{})                                      // zstd, gzip, br
	brFirst := mustNew(t, Options{Encodings: []string{"br", "gzip"}}) // no zstd
	gzipOnly := mustNew(t, Options{Encodings: []string{"gzip"}})
	tests := []struct {
		name string
		c    *Compressor
		give string
		want string
	}{
		{"browser, zstd preferred", all, "gzip, deflate, br, zstd", "zstd"},
		{"safari", all, "gzip, deflate, br", "gzip"},
		{"br preferred by server", brFirst, "gzip, deflate, br, zstd", "br"},
		{"single gzip", all, "gzip", "gzip"},
		{"single br", all, "br", "br"},
		{"empty", all, "", ""},
		{"only unknown codings", all, "deflate, compress, lz4", ""},
		{"identity only", all, "identity", ""},
		{"q picks br over zstd", all, "zstd;q=0.5, br;q=0.9, gzip;q=0.1", "br"},
		{"q picks gzip", all, "zstd;q=0.2, gzip;q=0.8", "gzip"},
		{"equal q: server order", all, "br;q=0.5, gzip;q=0.5", "gzip"},
		{"q=0 excludes", all, "zstd;q=0, gzip", "gzip"},
		{"q=0.000 excludes", all, "gzip;q=0.000", ""},
		{"q=1.000", all, "gzip;q=1.000", "gzip"},
		{"q=1.", all, "gzip;q=1.", "gzip"},
		{"q=0.001 still acceptable", all, "gzip;q=0.001", "gzip"},
		{"star", all, "*", "zstd"},
		{"star with exclusion", all, "*, zstd;q=0", "gzip"},
		{"star q=0 excludes the rest", all, "br, *;q=0", "br"},
		{"star q=0 alone", all, "*;q=0", ""},
		{"star lower than named", all, "*;q=0.1, br", "br"},
		{"identity q=0 and gzip", all, "identity;q=0, gzip", "gzip"},
		{"identity q=0 and nothing we offer", all, "identity;q=0, deflate", ""},
		{"identity heavier than gzip", all, "gzip;q=0.5, identity", ""},
		{"identity equal to gzip", all, "gzip, identity", "gzip"},
		{"star heavier than gzip counts for identity", gzipOnly, "gzip;q=0.5, *", ""},
		{"coding named twice keeps the lower weight", all, "zstd, zstd;q=0, gzip", "gzip"},
		{"x-gzip is gzip", all, "x-gzip", "gzip"},
		{"upper case", all, "GZIP, BR", "gzip"},
		{"mixed case and Q", all, "Zstd;Q=0.5, Br;q=1", "br"},
		{"whitespace", all, "  gzip ;  q=0.5 ,\tbr\t; q=0.6  ", "br"},
		{"empty elements", all, ", ,gzip,,", "gzip"},
		{"disabled coding not chosen", gzipOnly, "zstd, br", ""},
		{"malformed q", all, "gzip;q=abc", ""},
		{"q above 1", all, "gzip;q=2", ""},
		{"q 1.5", all, "gzip;q=1.5", ""},
		{"too many decimals", all, "gzip;q=0.1234", ""},
		{"space in q", all, "gzip;q = 0.5", ""},
		{"empty param", all, "gzip;", ""},
		{"unknown param", all, "gzip;level=9", ""},
		{"two params", all, "gzip;q=0.5;q=1", ""},
		{"not a token", all, "gzip/1.0", ""},
		{"space inside a name", all, "g zip", ""},
		{"malformed anywhere spoils all", all, "gzip, br;q=x", ""},
		{"quoted", all, `"gzip"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.c.Negotiate(tt.give); got != tt.want {
				t.Errorf("Negotiate(%q) = %q, want %q", tt.give, got, tt.want)
			}
		})
	}
}

func TestNegotiateFieldLines(t *testing.T) {
	t.Parallel()
	c := mustNew(t, Options{})
	tests := []struct {
		name string
		give []string
		want coding
	}{
		{"absent", nil, identity},
		{"lines combine", []string{"gzip;q=0.5", "br"}, brotliCoding},
		{"exclusion on a later line", []string{"zstd", "zstd;q=0, gzip"}, gzipCoding},
		{"one malformed line", []string{"gzip", "br;q=x"}, identity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := c.negotiate(tt.give); got != tt.want {
				t.Errorf("negotiate(%q) = %v, want %v", tt.give, got, tt.want)
			}
		})
	}
}

func TestNegotiateAllocs(t *testing.T) {
	c := mustNew(t, Options{})
	h := http.Header{"Accept-Encoding": {"gzip, deflate, br, zstd"}}
	for _, give := range []string{"gzip, deflate, br, zstd", "gzip, deflate, br", "br;q=1.0, gzip;q=0.8, *;q=0.1", ""} {
		if n := testing.AllocsPerRun(100, func() { c.Negotiate(give) }); n != 0 {
			t.Errorf("Negotiate(%q) allocates %v times, want 0", give, n)
		}
	}
	if n := testing.AllocsPerRun(100, func() { c.negotiate(h[hAcceptEncoding]) }); n != 0 {
		t.Errorf("negotiate(header) allocates %v times, want 0", n)
	}
}

func TestParseQ(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give   string
		want   int16
		wantOK bool
	}{
		{"0", 0, true}, {"0.", 0, true}, {"0.5", 500, true}, {"0.05", 50, true}, {"0.125", 125, true},
		{"0.999", 999, true}, {"1", 1000, true}, {"1.0", 1000, true}, {"1.000", 1000, true},
		{"", 0, false}, {"1.001", 0, false}, {"2", 0, false}, {".5", 0, false}, {"0.1234", 0, false},
		{"05", 0, false}, {"0,5", 0, false}, {"-0", 0, false}, {"0.a", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseQ(tt.give)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseQ(%q) = %d, %v, want %d, %v", tt.give, got, ok, tt.want, tt.wantOK)
		}
	}
}

// FuzzNegotiate checks that no header makes Negotiate panic or pick a coding
// that is not enabled or that the header neither names nor covers with "*".
func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{"gzip, deflate, br, zstd", "br;q=0.5, *;q=0", "identity;q=0", ", ,", "x-gzip;Q=1.000"} {
		f.Add(s)
	}
	c, err := New(Options{Encodings: []string{"br", "gzip"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, ae string) {
		got := c.Negotiate(ae)
		switch got {
		case "":
			return
		case "br", "gzip":
		default:
			t.Fatalf("Negotiate(%q) = %q, not an enabled coding", ae, got)
		}
		lower := strings.ToLower(ae)
		if !strings.Contains(lower, got) && !strings.Contains(lower, "*") {
			t.Fatalf("Negotiate(%q) = %q, which the header does not name", ae, got)
		}
	})
}
