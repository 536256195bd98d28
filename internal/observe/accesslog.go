package observe

import (
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// AccessEntry is one access-log line.
type AccessEntry struct {
	Time      time.Time // when the request arrived
	RequestID string
	Method    string
	Host      string
	Path      string // the cleaned path, without the query (which can carry secrets)
	Route     string // "none" when no route matched
	Status    int
	Bytes     int64 // response body bytes written to the client
	Duration  time.Duration
	Record    *Record
}

// AccessLog writes access-log lines, in the same JSON (or text) shape as the
// other logs. A request only formats its line and copies it into a buffer
// under a short lock; full buffers go to a writer goroutine, which also
// writes whatever waits every FlushInterval. So a slow or stuck output never
// holds up a request: when the writer falls behind by every buffer (1 MiB), lines are
// dropped and counted (Dropped) instead.
type AccessLog struct {
	text bool
	out  io.Writer

	mu   sync.Mutex
	cur  []byte // the buffer being filled
	made int    // buffers allocated, at most accessBuffers

	full    chan []byte // buffers waiting to be written, in order
	free    chan []byte // empty buffers
	dropped atomic.Uint64

	lines sync.Pool // *[]byte scratch for formatting outside the lock
	stop  chan struct{}
	done  chan struct{}
}

// FlushInterval bounds how long a line waits in a buffer.
const FlushInterval = 100 * time.Millisecond

const (
	accessBufSize = 64 << 10
	// accessBuffers bounds the buffers in use (one filling, the rest
	// queued or being written): 1 MiB of lines absorbs a burst that comes
	// faster than the writer runs; beyond it the output is stuck, not slow.
	accessBuffers = 16
)

// NewAccessLog returns an access log writing to w in format ("json" or
// "text"). Close writes what is left and stops its writer.
func NewAccessLog(w io.Writer, format string) *AccessLog {
	a := &AccessLog{
		text: format == "text",
		out:  w,
		cur:  make([]byte, 0, accessBufSize),
		full: make(chan []byte, accessBuffers),
		free: make(chan []byte, accessBuffers),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	a.made = 1
	a.lines.New = func() any { b := make([]byte, 0, 512); return &b }
	go a.writer()
	return a
}

// writer writes full buffers in order, and every FlushInterval the one being
// filled.
func (a *AccessLog) writer() {
	defer close(a.done)
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case buf := <-a.full:
			a.write(buf)
		case <-t.C:
			a.handOff()
		case <-a.stop:
			for {
				select {
				case buf := <-a.full:
					a.write(buf)
					continue
				default:
				}
				break
			}
			// Everything queued is out; last, the buffer being filled.
			a.mu.Lock()
			buf := a.cur
			a.cur = a.cur[len(a.cur):]
			a.mu.Unlock()
			if len(buf) > 0 {
				_, _ = a.out.Write(buf)
			}
			return
		}
	}
}

// handOff queues the buffer being filled, if it holds anything and an empty
// one can replace it.
func (a *AccessLog) handOff() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.cur) == 0 {
		return
	}
	if nb, ok := a.nextBuffer(); ok {
		a.full <- a.cur // never blocks: full has room for every buffer
		a.cur = nb
	}
}

// nextBuffer returns an empty buffer: a free one, else a new one while
// fewer than accessBuffers exist. Called with a.mu held.
func (a *AccessLog) nextBuffer() ([]byte, bool) {
	select {
	case nb := <-a.free:
		return nb, true
	default:
	}
	if a.made < accessBuffers {
		a.made++
		return make([]byte, 0, accessBufSize), true
	}
	return nil, false // every buffer is queued or being written
}

func (a *AccessLog) write(buf []byte) {
	_, _ = a.out.Write(buf) // an unwritable log output must not fail requests
	a.free <- buf[:0]
}

// Close writes the lines still buffered and stops the writer.
func (a *AccessLog) Close() {
	select {
	case <-a.stop:
	default:
		close(a.stop)
	}
	<-a.done
}

// Dropped counts lines dropped because the output fell behind.
func (a *AccessLog) Dropped() uint64 { return a.dropped.Load() }

// Log writes e's line.
func (a *AccessLog) Log(e *AccessEntry) {
	bp := a.lines.Get().(*[]byte)
	var b []byte
	if a.text {
		b = appendText((*bp)[:0], e)
	} else {
		b = appendJSON((*bp)[:0], e)
	}
	*bp = b // keep a grown scratch buffer
	a.mu.Lock()
	room := true
	if len(a.cur)+len(b) > cap(a.cur) {
		// Lines are written whole: the output is shared with the other logs,
		// and a line split over two writes could be interleaved.
		if nb, ok := a.nextBuffer(); ok {
			a.full <- a.cur
			a.cur = nb
		} else {
			room = false // the writer is behind by every buffer
		}
	}
	if room && len(b) <= cap(a.cur)-len(a.cur) {
		a.cur = append(a.cur, b...)
	} else {
		a.dropped.Add(1)
	}
	a.mu.Unlock()
	if cap(b) <= 4<<10 {
		a.lines.Put(bp)
	}
}

// appendJSON formats e as one line of JSON, with the keys log/slog's JSON
// handler uses for the other log lines (time, level, msg).
func appendJSON(b []byte, e *AccessEntry) []byte {
	b = append(b, `{"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"access","subsystem":"access","request_id":`...)
	b = appendJSONString(b, e.RequestID)
	r := e.Record
	if r != nil && r.ClientIP.IsValid() {
		b = append(b, `,"client_ip":"`...)
		b = r.ClientIP.AppendTo(b)
		b = append(b, '"')
	}
	b = append(b, `,"method":`...)
	b = appendJSONString(b, e.Method)
	b = append(b, `,"host":`...)
	b = appendJSONString(b, e.Host)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, e.Path)
	b = append(b, `,"route":`...)
	b = appendJSONString(b, e.Route)
	if r != nil && r.Backend != "" {
		b = append(b, `,"backend":`...)
		b = appendJSONString(b, r.Backend)
	}
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, e.Bytes, 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(e.Duration.Microseconds())/1000, 'f', 3, 64)
	retries := 0
	if r != nil && r.Attempts > 1 {
		retries = r.Attempts - 1
	}
	b = append(b, `,"retries":`...)
	b = strconv.AppendInt(b, int64(retries), 10)
	if r != nil && r.Cache != "" {
		b = append(b, `,"cache":`...)
		b = appendJSONString(b, r.Cache)
	}
	if r != nil && r.User != "" {
		b = append(b, `,"user":`...)
		b = appendJSONString(b, r.User)
	}
	return append(b, "}\n"...)
}

// appendText formats e like slog's text handler: key=value pairs.
func appendText(b []byte, e *AccessEntry) []byte {
	b = append(b, "time="...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, " level=INFO msg=access subsystem=access request_id="...)
	b = appendTextValue(b, e.RequestID)
	r := e.Record
	if r != nil && r.ClientIP.IsValid() {
		b = append(b, " client_ip="...)
		b = r.ClientIP.AppendTo(b)
	}
	b = append(b, " method="...)
	b = appendTextValue(b, e.Method)
	b = append(b, " host="...)
	b = appendTextValue(b, e.Host)
	b = append(b, " path="...)
	b = appendTextValue(b, e.Path)
	b = append(b, " route="...)
	b = appendTextValue(b, e.Route)
	if r != nil && r.Backend != "" {
		b = append(b, " backend="...)
		b = appendTextValue(b, r.Backend)
	}
	b = append(b, " status="...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, " bytes="...)
	b = strconv.AppendInt(b, e.Bytes, 10)
	b = append(b, " duration_ms="...)
	b = strconv.AppendFloat(b, float64(e.Duration.Microseconds())/1000, 'f', 3, 64)
	retries := 0
	if r != nil && r.Attempts > 1 {
		retries = r.Attempts - 1
	}
	b = append(b, " retries="...)
	b = strconv.AppendInt(b, int64(retries), 10)
	if r != nil && r.Cache != "" {
		b = append(b, " cache="...)
		b = appendTextValue(b, r.Cache)
	}
	if r != nil && r.User != "" {
		b = append(b, " user="...)
		b = appendTextValue(b, r.User)
	}
	return append(b, '\n')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// control characters are escaped, and so are <, > and & (as encoding/json
// does) so a log line pasted into HTML stays inert.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendTextValue appends s bare when it is a plain token, else quoted.
func appendTextValue(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == '"' || c == '=' || c >= utf8.RuneSelf {
			return strconv.AppendQuote(b, s)
		}
	}
	if s == "" {
		return append(b, `""`...)
	}
	return append(b, s...)
}
