package rawio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// peekClean is a Hold check: the socket is open with nothing unread.
func peekClean(fd uintptr) bool {
	var b [1]byte
	_, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return e == syscall.EAGAIN
}

// quiet fails the test if c receives anything within d.
func quiet(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	var b [64]byte
	n, err := c.Read(b[:])
	var ne net.Error
	if n > 0 || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("peer read %q, %v; want nothing before the deadline", b[:n], err)
	}
	_ = c.SetReadDeadline(time.Time{})
}

func holder(t *testing.T, c net.Conn) Holder {
	t.Helper()
	h, ok := New(c).(Holder)
	if !ok {
		t.Fatalf("New(*net.TCPConn) = %T, want a Holder", New(c))
	}
	return h
}

func TestHoldSendsWithTheRead(t *testing.T) {
	t.Parallel()
	peer, c := pair(t)
	h := holder(t, c)
	rw := h.(Conn)
	for round := 0; round < 3; round++ {
		h.Hold(peekClean)
		for _, part := range []string{"GET /a", " HTTP/1.1\r\n", "\r\n"} {
			if n, err := rw.Write([]byte(part)); n != len(part) || err != nil {
				t.Fatalf("held Write = %d, %v", n, err)
			}
		}
		quiet(t, peer, 30*time.Millisecond) // nothing goes before the Read
		got := make(chan string, 1)
		go func() {
			b := make([]byte, 64)
			n, _ := io.ReadAtLeast(peer, b, len("GET /a HTTP/1.1\r\n\r\n"))
			got <- string(b[:n])
			_, _ = peer.Write([]byte("answer"))
		}()
		buf := make([]byte, 64)
		n, err := rw.Read(buf)
		if err != nil || string(buf[:n]) != "answer" {
			t.Fatalf("round %d: Read = %q, %v; want the answer", round, buf[:n], err)
		}
		if s := <-got; s != "GET /a HTTP/1.1\r\n\r\n" {
			t.Fatalf("round %d: peer got %q", round, s)
		}
	}
	// After the exchange, writes go at once again.
	if _, err := rw.Write([]byte("now")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 3)
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(peer, b); err != nil || string(b) != "now" {
		t.Fatalf("unheld Write: peer got %q, %v", b, err)
	}
}

func TestHoldCheckFails(t *testing.T) {
	t.Parallel()
	peer, c := pair(t)
	h := holder(t, c)
	rw := h.(Conn)
	// Bytes the peer sent before the request: nothing is sent, and the
	// bytes stay unread.
	_, _ = peer.Write([]byte("stray"))
	waitReadable(t, c)
	h.Hold(peekClean)
	_, _ = rw.Write([]byte("request"))
	if _, err := rw.Read(make([]byte, 16)); !errors.Is(err, ErrStale) {
		t.Fatalf("Read with stray bytes = %v, want ErrStale", err)
	}
	quiet(t, peer, 30*time.Millisecond)
	// A peer that closed: the same.
	peer2, c2 := pair(t)
	h2 := holder(t, c2)
	_ = peer2.Close()
	waitReadable(t, c2)
	h2.Hold(peekClean)
	_, _ = h2.(Conn).Write([]byte("request"))
	if _, err := h2.(Conn).Read(make([]byte, 16)); !errors.Is(err, ErrStale) {
		t.Fatalf("Read after the peer closed = %v, want ErrStale", err)
	}
}

// waitReadable waits until c's socket has something to read (or an EOF).
func waitReadable(t *testing.T, c net.Conn) {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500; i++ {
		clean := true
		_ = rc.Control(func(fd uintptr) { clean = peekClean(fd) })
		if !clean {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatal("the socket never became readable")
}

// Unchecked (a fresh connection), bytes there before the Read are read,
// not waited for: a server that speaks first fails the exchange at once.
func TestHoldUncheckedReadsWhatIsThere(t *testing.T) {
	t.Parallel()
	peer, c := pair(t)
	h := holder(t, c)
	rw := h.(Conn)
	_, _ = peer.Write([]byte("banner"))
	waitReadable(t, c)
	// The netpoller has seen the bytes by now (a Read that would wait,
	// had they not been there, lets it look); the Hold's Read must still
	// find them.
	h.Hold(nil)
	_, _ = rw.Write([]byte("request"))
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16)
	n, err := rw.Read(buf)
	if err != nil || string(buf[:n]) != "banner" {
		t.Fatalf("Read = %q, %v; want the bytes already there", buf[:n], err)
	}
}

func TestHoldLargeWrite(t *testing.T) {
	t.Parallel()
	peer, c := pair(t)
	h := holder(t, c)
	rw := h.(Conn)
	// More than the socket takes at once: the Read sends what it can,
	// writes the rest the ordinary way, then reads.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
	h.Hold(nil)
	if _, err := rw.Write(big); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		got := make([]byte, len(big))
		_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(peer, got); err != nil {
			done <- err
			return
		}
		if !bytes.Equal(got, big) {
			done <- errors.New("the peer got different bytes")
			return
		}
		_, err := peer.Write([]byte("ok"))
		done <- err
	}()
	buf := make([]byte, 8)
	n, err := io.ReadAtLeast(rw, buf, 2)
	if err != nil || string(buf[:n]) != "ok" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestHoldDeadlineAndNoWrites(t *testing.T) {
	t.Parallel()
	peer, c := pair(t)
	h := holder(t, c)
	rw := h.(Conn)
	// The wait after the send ends at the read deadline.
	h.Hold(peekClean)
	_, _ = rw.Write([]byte("request"))
	// (A deadline already past when the Read starts sends nothing.)
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	_, err := rw.Read(make([]byte, 8))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline = %v, want a timeout", err)
	}
	b := make([]byte, 7)
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(peer, b); err != nil || string(b) != "request" {
		t.Fatalf("peer got %q, %v; want the request sent before the wait", b, err)
	}
	// A Hold with nothing written is an ordinary Read: bytes already
	// there are read, not waited for.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _ = peer.Write([]byte("x"))
	waitReadable(t, c)
	h.Hold(peekClean)
	n, err := rw.Read(make([]byte, 8))
	if n != 1 || err != nil {
		t.Fatalf("Read after an empty Hold = %d, %v; want the byte there", n, err)
	}
}
