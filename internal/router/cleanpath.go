package router

import (
	"path"
	"strings"
)

// CleanPath returns the canonical form of a percent-decoded request path: it
// starts with "/", has no "." or ".." segments (".." never climbs above the
// root) and no repeated slashes. A trailing slash is kept, because routes and
// backends may tell "/dir/" from "/dir", but "/a/.." gives "/", not "/a/..".
// A path that is already clean is returned as is, without allocating.
func CleanPath(p string) string {
	if isClean(p) {
		return p
	}
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// isClean reports whether CleanPath(p) == p, checking every segment between
// slashes: only the last one may be empty (a trailing slash).
func isClean(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	rest := p[1:]
	for {
		seg, next, more := strings.Cut(rest, "/")
		if seg == "." || seg == ".." || (seg == "" && more) {
			return false
		}
		if !more {
			return true
		}
		rest = next
	}
}
