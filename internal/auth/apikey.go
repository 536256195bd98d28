package auth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/textproto"
	"os"
	"strings"

	"github.com/altair-gateway/altair/internal/config"
)

// keyStore holds API keys as SHA-256 hashes only.
//
// Lookup hashes the presented key, finds the candidates whose hash starts
// with the same 8 bytes in a map, and compares the full 32-byte hashes with
// subtle.ConstantTimeCompare. Why not compare against every stored hash:
// the map keeps the cost O(1) with thousands of keys, and its timing depends
// only on the SHA-256 of the presented key: an attacker who learns that
// their guess's hash shares 8 bytes with a stored hash learns nothing about
// the key behind it without inverting SHA-256. The decision itself, on the
// full hash, is constant-time.
type keyStore struct {
	header     string // canonical, for the header map
	headerName string // as configured, for WWW-Authenticate
	byPrefix   map[uint64][]storedKey
}

type storedKey struct {
	name string
	sum  [sha256.Size]byte
}

func newKeyStore(c config.APIKeys, errs *Errors) *keyStore {
	s := &keyStore{headerName: c.Header, byPrefix: make(map[uint64][]storedKey)}
	if s.headerName == "" {
		s.headerName = defaultAPIKeyHeader
	}
	s.header = textproto.CanonicalMIMEHeaderKey(s.headerName)
	for i, k := range c.Keys {
		field := fmt.Sprintf("api_keys.keys[%d]", i)
		switch {
		case k.Name == "":
			errs.add(field+".name", "key needs a name")
		case k.Key != "" && k.SHA256 != "":
			errs.add(field, "key and sha256 are mutually exclusive")
		case k.Key != "":
			s.add(field, k.Name, sha256.Sum256([]byte(k.Key)), errs)
		case k.SHA256 != "":
			sum, ok := parseSHA256(k.SHA256)
			if !ok {
				errs.add(field+".sha256", "want 64 hex digits")
				continue
			}
			s.add(field, k.Name, sum, errs)
		default:
			errs.add(field, "key or sha256 is required")
		}
	}
	if c.File != "" {
		data, err := os.ReadFile(c.File)
		if err != nil {
			errs.add("api_keys.file", "read: %v", err)
		} else {
			s.parseFile(data, errs)
		}
	}
	return s
}

func (s *keyStore) add(field, name string, sum [sha256.Size]byte, errs *Errors) {
	p := binary.BigEndian.Uint64(sum[:8])
	for _, k := range s.byPrefix[p] {
		if k.sum == sum {
			errs.add(field, "key %q repeats the key of %q", name, k.name)
			return
		}
	}
	s.byPrefix[p] = append(s.byPrefix[p], storedKey{name: name, sum: sum})
}

func (s *keyStore) hasName(name string) bool {
	for _, ks := range s.byPrefix {
		for _, k := range ks {
			if k.name == name {
				return true
			}
		}
	}
	return false
}

func (s *keyStore) len() int {
	n := 0
	for _, ks := range s.byPrefix {
		n += len(ks)
	}
	return n
}

// parseFile reads lines "name key" or "name sha256:HEX"; "#" at the start
// of a line or after a blank starts a comment. Error messages name the line,
// never its key.
func (s *keyStore) parseFile(data []byte, errs *Errors) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := stripComment(sc.Text())
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		field := fmt.Sprintf("api_keys.file (line %d)", n)
		if len(fields) != 2 {
			errs.add(field, `want "name key" or "name sha256:HEX"`)
			continue
		}
		name, key := fields[0], fields[1]
		// The same rules as keys in the config file: a name for logs and
		// rate-limit keys, unique, and a key long enough not to be guessed.
		if !config.ValidKeyName(name) {
			errs.add(field, "name must match [A-Za-z0-9_.-]+")
			continue
		}
		if s.hasName(name) {
			errs.add(field, "name %q is used twice", name)
			continue
		}
		if hexSum, ok := strings.CutPrefix(key, "sha256:"); ok {
			sum, ok := parseSHA256(hexSum)
			if !ok {
				errs.add(field, "sha256: want 64 hex digits")
				continue
			}
			s.add(field, name, sum, errs)
			continue
		}
		if err := config.CheckSecret("the key", key); err != nil {
			errs.add(field, "%v", err)
			continue
		}
		s.add(field, name, sha256.Sum256([]byte(key)), errs)
	}
	if err := sc.Err(); err != nil {
		errs.add("api_keys.file", "read: %v", err)
	}
}

func stripComment(line string) string {
	for i := 0; i < len(line); i++ {
		if line[i] == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			return line[:i]
		}
	}
	return line
}

func parseSHA256(s string) (sum [sha256.Size]byte, ok bool) {
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) != 2*sha256.Size {
		return sum, false
	}
	if _, err := hex.Decode(sum[:], []byte(s)); err != nil {
		return sum, false
	}
	return sum, true
}

// lookup returns the name of the presented key.
func (s *keyStore) lookup(key string) (name string, ok bool) {
	sum := sha256.Sum256([]byte(key))
	for _, k := range s.byPrefix[binary.BigEndian.Uint64(sum[:8])] {
		if hashEqual(k.sum[:], sum[:]) {
			return k.name, true
		}
	}
	return "", false
}

// hashEqual compares two hashes in constant time.
func hashEqual(a, b []byte) bool {
	return subtle.ConstantTimeCompare(a, b) == 1
}
