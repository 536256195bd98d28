// Package compress encodes responses with zstd, brotli or gzip, chosen from
// the client's Accept-Encoding.
//
// It is a leaf of the request path, like config and observe: the gateway
// wraps a route's handler with Compressor.Wrap, and the response cache may
// import it to key its entries by the coding a client would get (Negotiate),
// to tell which responses vary by Accept-Encoding at all (Compressible) and
// to build encoded variants of a stored body (AppendEncoded).
//
// A response is encoded when all of these hold:
//   - the client accepts one of the enabled codings (Negotiate);
//   - the request is not HEAD, CONNECT or a Range request;
//   - the status is not 1xx, 204, 205, 206 or 304;
//   - the response has no Content-Encoding, no Content-Range and no
//     Cache-Control: no-transform;
//   - its Content-Type is compressible (Compressible);
//   - its length is at least MinSize: a declared Content-Length is trusted,
//     and without one the first MinSize bytes are held back to find out
//     (not when it declares trailers or the handler flushes: then it is
//     encoded whatever its size).
//
// Otherwise it passes through unchanged, even to a client that refused
// identity (identity;q=0): an unencoded answer beats a 406.
//
// A compressible response gets Vary: Accept-Encoding whether or not this
// client's copy is encoded, so a shared cache keeps the variants apart. An
// encoded response loses Content-Length and Accept-Ranges, and a strong ETag
// becomes weak (W/"x"): the bytes differ from the identity representation the
// origin's tag names, but the content is the same, and the origin's weak
// comparison of If-None-Match still matches. Last-Modified is kept.
//
// With a response cache, either order works:
//   - Compressor in front of the cache (the cache nearer the upstream): the
//     cache stores what the upstream sent, the identity body unless the
//     upstream encodes itself, and every answer, hit or miss, is encoded on
//     the way out. Simple, and one entry per resource; a hit costs the
//     encoding's CPU.
//   - Cache in front of the Compressor: the cache stores each encoded
//     variant, marked Vary: Accept-Encoding with a weak ETag. Keyed by the
//     raw Accept-Encoding, browsers' many spellings would each get an
//     entry; keyed by Negotiate's result, a resource has at most four (zstd,
//     gzip, br, identity) and a hit costs no CPU.
package compress

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Content codings, as named in Accept-Encoding and Content-Encoding.
const (
	Gzip   = "gzip"
	Brotli = "br"
	Zstd   = "zstd"
)

// Defaults used for zero Options fields.
const (
	// DefaultMinSize is the smallest body encoded, in bytes. Below about a
	// kilobyte the coding's framing and the CPU time outweigh the saving.
	DefaultMinSize = 1024
	// DefaultGzipLevel is gzip's level (1 fastest to 9 smallest).
	DefaultGzipLevel = 5
	// DefaultBrotliLevel is brotli's quality (0 fastest to 11 smallest).
	DefaultBrotliLevel = 4
	// DefaultZstdLevel is zstd's level on the zstd scale (1 to 22), mapped
	// onto klauspost/compress's four speeds: 1-2 fastest, 3-5 default,
	// 6-9 better, 10 and up best.
	DefaultZstdLevel = 3
)

// DefaultEncodings returns the codings offered when Options.Encodings is
// empty, in the server's preference order
// (it breaks ties between codings the client weighs equally). Measured on
// API-like JSON and on HTML and JavaScript with the default levels (see the
// package's benchmarks): zstd at level 3 matches gzip 5's ratio for less CPU,
// and every current Chromium and Firefox offers it; gzip comes next, for
// Safari, curl and SDKs; pure-Go brotli at quality 4 saves only 1-6% over
// gzip 5 for about five times its CPU, so it is offered last, for clients
// that ask for br alone or weigh it higher. Put "br" first on a route of
// static assets if bytes matter more than CPU there.
func DefaultEncodings() []string { return slices.Clone(defaultEncodings) }

// DefaultTypes returns the media types compressed when Options.Types is
// empty. "type/*" and "type/*+suffix" are wildcards; see Options.Types. To
// add a type to them, append it to this list.
func DefaultTypes() []string { return slices.Clone(defaultTypes) }

var defaultEncodings = []string{Zstd, Gzip, Brotli}

var defaultTypes = []string{
	"text/*",
	"application/json",
	"application/*+json",
	"application/x-ndjson",
	"application/xml",
	"application/*+xml",
	"application/javascript",
	"application/x-javascript",
	"application/ecmascript",
	"application/yaml",
	"application/*+yaml",
	"application/wasm",
	"application/vnd.ms-fontobject",
	"font/ttf",
	"font/otf",
	"image/svg+xml",
	"image/bmp",
	"image/x-icon",
	"image/vnd.microsoft.icon",
}

// Errors New reports (wrapped, joined when there are several).
var (
	// ErrUnknownEncoding is an Options.Encodings entry other than
	// "zstd", "br" and "gzip", or one listed twice.
	ErrUnknownEncoding = errors.New("unknown encoding")
	// ErrLevel is a level outside its coding's range.
	ErrLevel = errors.New("level out of range")
	// ErrType is an Options.Types entry that is not a media type pattern.
	ErrType = errors.New("invalid media type pattern")
	// ErrMinSize is a negative Options.MinSize.
	ErrMinSize = errors.New("negative min size")
)

// Options configure a Compressor. The zero value is valid and means the
// defaults.
type Options struct {
	// Encodings are the codings offered, most preferred first: any of
	// "zstd", "br" and "gzip". Empty: DefaultEncodings().
	Encodings []string
	// MinSize is the smallest body encoded, in bytes. 0: DefaultMinSize.
	MinSize int
	// GzipLevel is gzip's level, 1 (fastest) to 9 (smallest).
	// 0: DefaultGzipLevel.
	GzipLevel int
	// BrotliLevel is brotli's quality, 1 (fastest) to 11 (smallest).
	// 0: DefaultBrotliLevel.
	BrotliLevel int
	// ZstdLevel is zstd's level, 1 (fastest) to 22 (smallest), mapped to the
	// encoder's four speeds (see DefaultZstdLevel). 0: DefaultZstdLevel.
	ZstdLevel int
	// Types are the compressible media types, replacing DefaultTypes() when
	// not empty. Each is "type/subtype" (exact), "type/*", "type/*+suffix"
	// or "*/*+suffix", compared without case. Types that are compressed
	// already (image/*, video/*, audio/*, font/woff2, archives,
	// application/octet-stream, ...), gRPC and text/event-stream are never
	// matched by a wildcard; an exact entry (image/svg+xml,
	// text/event-stream) still selects one.
	Types []string
}

// Merge returns o with each non-zero field of over replacing its own, for a
// route that overrides part of the global policy: a route setting only
// BrotliLevel keeps the global Types. Lists are replaced, not appended to.
func (o Options) Merge(over Options) Options {
	if len(over.Encodings) > 0 {
		o.Encodings = over.Encodings
	}
	if over.MinSize != 0 {
		o.MinSize = over.MinSize
	}
	if over.GzipLevel != 0 {
		o.GzipLevel = over.GzipLevel
	}
	if over.BrotliLevel != 0 {
		o.BrotliLevel = over.BrotliLevel
	}
	if over.ZstdLevel != 0 {
		o.ZstdLevel = over.ZstdLevel
	}
	if len(over.Types) > 0 {
		o.Types = over.Types
	}
	return o
}

// Compressor is a compiled compression policy and its encoder pools. It is
// safe for concurrent use. Build one per distinct policy and share it: each
// keeps its own pools of encoders.
type Compressor struct {
	prefs   []coding // enabled codings, most preferred first
	minSize int
	types   typeSet
	pools   [numCodings]*sync.Pool // nil for codings not enabled
	writers sync.Pool              // *responseWriter

	// testRelease, when set by a test, sees every encoder handed back:
	// pooled is false when it was dropped instead (after a panic or an error).
	testRelease func(c coding, pooled bool)
}

// New validates o, fills in its defaults and returns the Compressor.
func New(o Options) (*Compressor, error) {
	var errs []error
	c := &Compressor{minSize: o.MinSize}
	if o.MinSize < 0 {
		errs = append(errs, fmt.Errorf("min size %d: %w", o.MinSize, ErrMinSize))
	}
	if c.minSize == 0 {
		c.minSize = DefaultMinSize
	}

	names := o.Encodings
	if len(names) == 0 {
		names = defaultEncodings
	}
	for _, name := range names {
		cd := codingByName(strings.ToLower(strings.TrimSpace(name)))
		if cd == identity || c.enabled(cd) {
			errs = append(errs, fmt.Errorf("encoding %q: %w", name, ErrUnknownEncoding))
			continue
		}
		c.prefs = append(c.prefs, cd)
	}

	levels := [numCodings]struct {
		level, def, lo, hi int
	}{
		gzipCoding:   {o.GzipLevel, DefaultGzipLevel, 1, 9},
		brotliCoding: {o.BrotliLevel, DefaultBrotliLevel, 1, 11},
		zstdCoding:   {o.ZstdLevel, DefaultZstdLevel, 1, 22},
	}
	for cd := gzipCoding; cd < numCodings; cd++ {
		l := levels[cd]
		if l.level == 0 {
			l.level = l.def
		}
		if l.level < l.lo || l.level > l.hi {
			errs = append(errs, fmt.Errorf("%s level %d (want %d to %d): %w", cd, l.level, l.lo, l.hi, ErrLevel))
			continue
		}
		if c.enabled(cd) {
			c.pools[cd] = newPool(cd, l.level)
		}
	}

	types := o.Types
	if len(types) == 0 {
		types = defaultTypes
	}
	ts, err := compileTypes(types)
	if err != nil {
		errs = append(errs, err)
	}
	c.types = ts

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	c.writers.New = func() any { return new(responseWriter) }
	return c, nil
}

func (c *Compressor) enabled(cd coding) bool {
	for _, p := range c.prefs {
		if p == cd {
			return true
		}
	}
	return false
}

// Encodings returns the enabled codings, most preferred first.
func (c *Compressor) Encodings() []string {
	out := make([]string, len(c.prefs))
	for i, cd := range c.prefs {
		out[i] = cd.String()
	}
	return out
}

// MinSize returns the smallest body the Compressor encodes, in bytes.
func (c *Compressor) MinSize() int { return c.minSize }

// Negotiate returns the coding a client sending this Accept-Encoding value
// gets for a compressible response: "zstd", "br", "gzip", or "" for none
// (identity). It follows RFC 9110, section 12.5.3: a coding's weight is its
// own q-value, else that of "*", else 0 (not acceptable); the heaviest
// enabled coding wins, ties going to the server's preference order; identity
// wins only when the client weighs it above every coding. "x-gzip" is gzip.
// An empty or malformed value means identity. Negotiate does not allocate.
//
// A cache in front of the Compressor keys a stored variant by this result,
// so clients with different but equivalent headers share one entry.
func (c *Compressor) Negotiate(acceptEncoding string) string {
	return c.negotiate1(acceptEncoding).name()
}

// Compressible reports whether a response with this Content-Type is encoded
// (given a large enough body and a client that accepts a coding). Parameters
// (";charset=utf-8") are ignored; an empty type is not compressible.
func (c *Compressor) Compressible(contentType string) bool {
	return c.types.match(contentType)
}

// AppendEncoded appends src, encoded with coding ("zstd", "br" or "gzip"),
// to dst, using the Compressor's pooled encoders and levels. A cache that
// stores per-coding variants of an identity body builds them with it.
func (c *Compressor) AppendEncoded(dst, src []byte, coding string) ([]byte, error) {
	cd := codingByName(coding)
	if cd == identity || c.pools[cd] == nil {
		return dst, fmt.Errorf("encode %q: %w", coding, ErrUnknownEncoding)
	}
	buf := appendWriter{b: dst}
	pe := c.acquire(cd, &buf)
	_, err := pe.enc.Write(src)
	if err == nil {
		err = pe.enc.Close()
	}
	c.release(pe, err == nil)
	if err != nil {
		return dst, fmt.Errorf("encode %s: %w", cd, err)
	}
	return buf.b, nil
}

// appendWriter is an io.Writer appending to a slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// coding is a content coding the Compressor knows.
type coding uint8

const (
	identity coding = iota
	gzipCoding
	brotliCoding
	zstdCoding
	numCodings
)

var codingNames = [numCodings]string{"", Gzip, Brotli, Zstd}

// contentEncoding holds each coding's Content-Encoding value, shared by every
// response (len == cap: an append copies it).
var contentEncoding = [numCodings][]string{
	nil,
	{Gzip},
	{Brotli},
	{Zstd},
}

func (cd coding) name() string { return codingNames[cd] }

func (cd coding) String() string {
	if cd == identity {
		return "identity"
	}
	return codingNames[cd]
}

func codingByName(s string) coding {
	switch s {
	case Gzip:
		return gzipCoding
	case Brotli:
		return brotliCoding
	case Zstd:
		return zstdCoding
	}
	return identity
}

// encoder is what the three libraries' writers have in common.
type encoder interface {
	io.WriteCloser
	Flush() error
	Reset(io.Writer)
}

// pooledEncoder is an encoder and the sink it writes to. The encoder is built
// once around the sink; the sink's target is switched per response, so a
// pooled encoder never holds on to a finished response.
type pooledEncoder struct {
	cd   coding
	enc  encoder
	sink sink
}

// sink forwards an encoder's output to the current response.
type sink struct{ w io.Writer }

func (s *sink) Write(p []byte) (int, error) {
	if s.w == nil {
		return 0, errReleased
	}
	return s.w.Write(p)
}

var errReleased = errors.New("compress: encoder written after release")

// zstdWindow caps zstd's window. Responses are mostly far smaller; a smaller
// window keeps each pooled encoder (and each open SSE stream) small. HTTP's
// zstd coding allows up to 8 MiB (RFC 9659).
const zstdWindow = 1 << 20

// brotliWindow is brotli's window as a power of two (LGWin), for the same
// reason.
const brotliWindow = 20

func newPool(cd coding, level int) *sync.Pool {
	return &sync.Pool{New: func() any {
		pe := &pooledEncoder{cd: cd}
		switch cd {
		case gzipCoding:
			// NewWriterLevel fails only for a level out of range, which
			// New has ruled out.
			gw, _ := gzip.NewWriterLevel(&pe.sink, level)
			pe.enc = gw
		case brotliCoding:
			pe.enc = brotli.NewWriterOptions(&pe.sink, brotli.WriterOptions{Quality: level, LGWin: brotliWindow})
		case zstdCoding:
			// One goroutine-free encoder per response: concurrency 1 keeps
			// Write synchronous, so nothing outlives the request.
			zw, _ := zstd.NewWriter(&pe.sink,
				zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
				zstd.WithEncoderConcurrency(1),
				zstd.WithWindowSize(zstdWindow),
				zstd.WithLowerEncoderMem(true),
			)
			pe.enc = zw
		}
		return pe
	}}
}

// acquire takes an encoder for cd from its pool, reset to write to w.
func (c *Compressor) acquire(cd coding, w io.Writer) *pooledEncoder {
	pe := c.pools[cd].Get().(*pooledEncoder)
	pe.sink.w = w
	pe.enc.Reset(&pe.sink)
	return pe
}

// release hands pe back. An encoder that may be mid-stream or failed (a
// panic or a write error interrupted it) is dropped, not pooled: Reset would
// likely recover it, but a fresh one costs little and is certain.
func (c *Compressor) release(pe *pooledEncoder, ok bool) {
	pe.sink.w = nil
	if ok {
		c.pools[pe.cd].Put(pe)
	}
	if c.testRelease != nil {
		c.testRelease(pe.cd, ok)
	}
}
