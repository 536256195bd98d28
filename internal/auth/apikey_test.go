package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/altair-gateway/altair/internal/config"
)

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := writeFile(t, dir, "keys", strings.Join([]string{
		"# name key",
		"",
		"   # indented comment",
		"batch   key-from-file-0001   # trailing comment",
		"hashed\tsha256:" + strings.ToUpper(sha("hashed-key")),
		"hash.inside key#with#hashes-0001",
	}, "\n"))
	a := newAuth(t, config.Auth{APIKeys: config.APIKeys{
		Header: "X-API-Key",
		Keys: []config.APIKey{
			{Name: "mobile", Key: "plain-key"},
			{Name: "partner", SHA256: sha("partner-key")},
		},
		File: file,
	}}, Options{})
	if got := a.apiKeys.len(); got != 5 {
		t.Fatalf("keys loaded = %d, want 5", got)
	}
	h, s := handler(t, a, config.RouteAuth{Methods: []string{"api_key"}})

	tests := []struct {
		name     string
		header   []string
		wantName string // "" = refused
		wantMsg  string
	}{
		{"plain key", []string{"X-API-Key", "plain-key"}, "mobile", ""},
		{"sha256 entry", []string{"X-API-Key", "partner-key"}, "partner", ""},
		{"file key", []string{"X-API-Key", "key-from-file-0001"}, "batch", ""},
		{"file sha256 entry, upper-case hex", []string{"X-API-Key", "hashed-key"}, "hashed", ""},
		{"file key with # inside", []string{"X-API-Key", "key#with#hashes-0001"}, "hash.inside", ""},
		{"header name case", []string{"x-api-key", "plain-key"}, "mobile", ""},
		{"wrong key", []string{"X-API-Key", "plain-kez"}, "", msgInvalidKey},
		{"the hash itself is not a key", []string{"X-API-Key", sha("partner-key")}, "", msgInvalidKey},
		{"comment is not a key", []string{"X-API-Key", "trailing"}, "", msgInvalidKey},
		{"empty key", []string{"X-API-Key", ""}, "", msgInvalidKey},
		{"two keys", []string{"X-API-Key", "plain-key", "X-API-Key", "partner-key"}, "", msgInvalidKey},
		{"missing", nil, "", msgMissing},
		{"bearer token is not a key", []string{"Authorization", "Bearer plain-key"}, "", msgMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			*s = seen{}
			w := get(h, "/api", tt.header...)
			if tt.wantName == "" {
				if w.Code != http.StatusUnauthorized || s.called {
					t.Fatalf("status = %d, want 401", w.Code)
				}
				if b := decodeErr(t, w); b.Message != tt.wantMsg || b.Error != CodeUnauthorized {
					t.Errorf("body = %+v, want message %q", b, tt.wantMsg)
				}
				if got := w.Header().Get("WWW-Authenticate"); got != `APIKey realm="altair", header="X-API-Key"` {
					t.Errorf("WWW-Authenticate = %q", got)
				}
				return
			}
			if w.Code != http.StatusNoContent {
				t.Fatalf("status = %d, want 204", w.Code)
			}
			if s.principal == nil || s.principal.Method != "api_key" || s.principal.Name != tt.wantName || s.principal.Claims != nil {
				t.Errorf("principal = %+v, want api_key %q", s.principal, tt.wantName)
			}
			if s.header.Get("X-API-Key") != "" {
				t.Errorf("X-API-Key forwarded upstream by default")
			}
		})
	}
}

func TestAPIKeyForwarded(t *testing.T) {
	t.Parallel()
	a := newAuth(t, config.Auth{APIKeys: config.APIKeys{Header: "X-Key", Keys: []config.APIKey{{Name: "n", Key: "k"}}}}, Options{})
	h, s := handler(t, a, config.RouteAuth{ForwardAPIKey: true})
	if w := get(h, "/", "X-Key", "k", "Authorization", "Basic Zm9vOmJhcg=="); w.Code != http.StatusNoContent {
		t.Fatalf("status = %d", w.Code)
	}
	if s.header.Get("X-Key") != "k" {
		t.Errorf("X-Key = %q, want forwarded with forward_api_key", s.header.Get("X-Key"))
	}
	if s.header.Get("Authorization") != "" {
		t.Errorf("Authorization forwarded without forward_authorization")
	}
}

func TestHashEqual(t *testing.T) {
	t.Parallel()
	a := sha256.Sum256([]byte("a"))
	b := sha256.Sum256([]byte("b"))
	lastBit := a
	lastBit[31] ^= 1
	firstBit := a
	firstBit[0] ^= 0x80
	tests := []struct {
		name string
		x, y []byte
		want bool
	}{
		{"same", a[:], a[:], true},
		{"different hashes", a[:], b[:], false},
		{"last bit differs", a[:], lastBit[:], false},
		{"first bit differs", a[:], firstBit[:], false},
		{"different length", a[:], a[:31], false},
	}
	for _, tt := range tests {
		if got := hashEqual(tt.x, tt.y); got != tt.want {
			t.Errorf("hashEqual(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestKeyLookupSamePrefix(t *testing.T) {
	t.Parallel()
	// Two stored hashes under one 8-byte prefix: the lookup decides on the
	// full hash with the constant-time compare.
	var errs Errors
	s := newKeyStore(config.APIKeys{Keys: []config.APIKey{{Name: "real", Key: "secret"}}}, &errs)
	real := sha256.Sum256([]byte("secret"))
	twin := real
	twin[31] ^= 0xff
	s.add("test", "twin", twin, &errs)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if got := len(s.byPrefix[beUint64(real[:8])]); got != 2 {
		t.Fatalf("bucket size = %d, want 2", got)
	}
	if name, ok := s.lookup("secret"); !ok || name != "real" {
		t.Errorf("lookup(secret) = %q, %v, want real", name, ok)
	}
	if name, ok := s.lookup("secreT"); ok {
		t.Errorf("lookup(secreT) = %q, want no match", name)
	}
}

func beUint64(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

func TestStripComment(t *testing.T) {
	t.Parallel()
	tests := []struct{ give, want string }{
		{"# all", ""},
		{"a b # c", "a b "},
		{"a b#c", "a b#c"},
		{"a\tb\t#c", "a\tb\t"},
	}
	for _, tt := range tests {
		if got := stripComment(tt.give); got != tt.want {
			t.Errorf("stripComment(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

// TestAPIKeyFileRules: keys from the file obey the same rules as keys in the
// config: a valid, unique name and a key long enough not to be guessed.
func TestAPIKeyFileRules(t *testing.T) {
	t.Parallel()
	file := writeFile(t, t.TempDir(), "keys", strings.Join([]string{
		"good long-enough-key-0001",
		"short abc",
		"bad/name long-enough-key-0002",
		"good long-enough-key-0003",
	}, "\n"))
	_, err := New(config.Auth{APIKeys: config.APIKeys{Header: "X-API-Key", File: file}}, Options{})
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 3 {
		t.Fatalf("New with bad key-file lines = %v, want 3 problems", err)
	}
	for i, want := range []string{"(line 2)", "(line 3)", "(line 4)"} {
		if !strings.Contains(errs[i].Field, want) {
			t.Errorf("problem %d at %q, want %s", i, errs[i].Field, want)
		}
		if strings.Contains(errs[i].Msg, "abc") || strings.Contains(errs[i].Msg, "long-enough") {
			t.Errorf("problem %q reveals a key", errs[i].Msg)
		}
	}
}
