package rawio

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

// pair returns the two ends of a loopback TCP connection.
func pair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	return client, server
}

func TestRawOnTCP(t *testing.T) {
	t.Parallel()
	client, server := pair(t)
	rw := New(server)
	if _, ok := rw.(*raw); !ok && runtime.GOOS == "linux" {
		t.Fatalf("New(*net.TCPConn) = %T, want raw I/O", rw)
	}
	// A write far larger than the socket buffers must wait for the reader
	// (EAGAIN, then the netpoller) and still deliver every byte in order.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	done := make(chan error, 1)
	go func() {
		n, err := rw.Write(big)
		if err == nil && n != len(big) {
			err = io.ErrShortWrite
		}
		done <- err
	}()
	got := make([]byte, len(big))
	_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Write: %v", err)
	}
	if !bytes.Equal(got, big) {
		t.Fatal("bytes differ")
	}
	// Reads wait for data, then return what arrived.
	go func() { time.Sleep(20 * time.Millisecond); _, _ = client.Write([]byte("hello")) }()
	buf := make([]byte, 64)
	n, err := rw.Read(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	if n, err := rw.Read(nil); n != 0 || err != nil {
		t.Fatalf("Read(nil) = %d, %v", n, err)
	}
	// The peer's close is io.EOF.
	_ = client.Close()
	if _, err := rw.Read(buf); err != io.EOF {
		t.Fatalf("Read after the peer closed = %v, want io.EOF", err)
	}
}

func TestRawDeadlines(t *testing.T) {
	t.Parallel()
	_, server := pair(t)
	rw := New(server)
	_ = server.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	_, err := rw.Read(make([]byte, 8))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline = %v, want a timeout", err)
	}
	// A write that cannot finish (nobody reads) ends at the write deadline.
	_ = server.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	_, err = rw.Write(bytes.Repeat([]byte("x"), 64<<20))
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Write past the deadline = %v, want a timeout", err)
	}
}

func TestRawErrors(t *testing.T) {
	t.Parallel()
	client, server := pair(t)
	rw := New(server)
	// Writing to a peer that reset the connection fails (EPIPE or
	// ECONNRESET), without a signal killing the test.
	_ = client.(*net.TCPConn).SetLinger(0)
	_ = client.Close()
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = rw.Write(bytes.Repeat([]byte("x"), 64<<10))
	}
	if err == nil {
		t.Fatal("writes to a reset connection kept succeeding")
	}
	// Reads and writes on a closed connection fail.
	_ = server.Close()
	if _, err := rw.Read(make([]byte, 8)); err == nil {
		t.Fatal("Read on a closed connection succeeded")
	}
	if _, err := rw.Write([]byte("x")); err == nil {
		t.Fatal("Write on a closed connection succeeded")
	}
}

// wrapped is a connection wrapper (like the edge's connection caps) that
// says what it wraps.
type wrapped struct{ net.Conn }

func (w wrapped) NetConn() net.Conn { return w.Conn }

type opaque struct{ net.Conn }

func TestNewUnwrapsOrFallsBack(t *testing.T) {
	t.Parallel()
	_, server := pair(t)
	if runtime.GOOS == "linux" {
		if _, ok := New(wrapped{server}).(*raw); !ok {
			t.Error("a wrapper with NetConn: want raw I/O on the socket")
		}
	}
	// A TLS connection's socket carries ciphertext: never unwrapped, even
	// behind a wrapper.
	tc := tls.Server(server, &tls.Config{})
	if got := New(tc); got != net.Conn(tc) {
		t.Errorf("*tls.Conn: New = %T, want the connection itself", got)
	}
	if got := New(wrapped{tc}); got != net.Conn(wrapped{tc}) {
		t.Errorf("a wrapper around *tls.Conn: New = %T, want the wrapper itself", got)
	}
	o := opaque{server}
	if got := New(o); got != net.Conn(o) {
		t.Errorf("a wrapper without NetConn: New = %T, want the connection itself", got)
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := New(a); got != a {
		t.Errorf("net.Pipe: New = %T, want the connection itself", got)
	}
}
