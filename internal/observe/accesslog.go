package observe

import (
	"bufio"
	"io"
	"strconv"
	"sync"
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
// other logs, through a buffer that is flushed every FlushInterval and when
// it fills, so a line costs a copy, not a write system call. The buffer's
// lock is held only for that copy.
type AccessLog struct {
	text bool

	mu  sync.Mutex
	buf *bufio.Writer

	lines sync.Pool // *[]byte scratch for formatting outside the lock
	stop  chan struct{}
	done  chan struct{}
}

// FlushInterval bounds how long a line waits in the buffer.
const FlushInterval = 100 * time.Millisecond

// NewAccessLog returns an access log writing to w in format ("json" or
// "text"). Close flushes it and stops its flusher.
func NewAccessLog(w io.Writer, format string) *AccessLog {
	a := &AccessLog{
		text: format == "text",
		buf:  bufio.NewWriterSize(w, 64<<10),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	a.lines.New = func() any { b := make([]byte, 0, 512); return &b }
	go a.flusher()
	return a
}

func (a *AccessLog) flusher() {
	defer close(a.done)
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			a.Flush()
		case <-a.stop:
			a.Flush()
			return
		}
	}
}

// Flush writes out buffered lines.
func (a *AccessLog) Flush() {
	a.mu.Lock()
	_ = a.buf.Flush() // an unwritable log output must not fail requests
	a.mu.Unlock()
}

// Close flushes the buffer and stops the flusher.
func (a *AccessLog) Close() {
	select {
	case <-a.stop:
	default:
		close(a.stop)
	}
	<-a.done
}

// Log writes e's line.
func (a *AccessLog) Log(e *AccessEntry) {
	bp := a.lines.Get().(*[]byte)
	var b []byte
	if a.text {
		b = appendText((*bp)[:0], e)
	} else {
		b = appendJSON((*bp)[:0], e)
	}
	a.mu.Lock()
	if len(b) > a.buf.Available() {
		// Write whole lines only: the output is shared with the other
		// logs, and a line split over two writes could be interleaved.
		_ = a.buf.Flush()
	}
	_, _ = a.buf.Write(b)
	a.mu.Unlock()
	if cap(b) <= 4<<10 {
		*bp = b
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
