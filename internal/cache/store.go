package cache

import (
	"context"
	"time"
)

// Store keeps cached responses. Keys have two levels:
//
//   - key names the resource: host, path and query (see Key), so that a
//     prefix of it names a subtree for purging, and so that one Delete
//     invalidates the resource for every route, credential and variant;
//   - sub names who may see an entry: the route and the credentials
//     partition. Entries under different subs never answer each other's
//     requests.
//
// Under one key and sub a store keeps the variants of the resource (RFC 9111
// §4.1), at most one per Entry.Variant.
//
// A Store is safe for concurrent use. Entries it returns are shared and must
// not be modified; entries given to Set are not modified afterwards by the
// cache. The in-process Memory store never fails; a networked store (Redis)
// returns errors, and the cache then serves without it.
type Store interface {
	// Get returns the live variants stored under key and sub; nil when
	// there are none.
	Get(ctx context.Context, key, sub string) ([]*Entry, error)
	// Set stores e under key and sub for ttl, replacing the variant with
	// the same Variant.
	Set(ctx context.Context, key, sub string, e *Entry, ttl time.Duration) error
	// Delete removes everything stored under key, in every sub, and
	// returns how many entries it removed.
	Delete(ctx context.Context, key string) (int, error)
	// DeletePrefix removes everything stored under keys that start with
	// prefix and returns how many entries it removed.
	DeletePrefix(ctx context.Context, prefix string) (int, error)
}

// maxVariants bounds the variants kept under one key and sub: a response
// that varies on a field with many values (User-Agent) cannot fill the
// cache with one resource. The oldest variant makes room.
const maxVariants = 16
