// Package redistest runs real redis-server processes for tests, each on a
// free loopback port, without persistence, stopped by PID when the test ends:
// a plain server (Start), one that wants a password or an ACL user
// (StartAuth), one that speaks only TLS with a throwaway CA (NewCA,
// StartTLS), a Redis Cluster (StartCluster), and a master with replicas and
// Sentinels (StartSentinel).
//
// There is no mocked Redis. A missing redis-server fails the test with the
// command that installs it (`make test` installs it by itself); nothing is
// skipped silently.
package redistest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startTimeout bounds waiting for a server to answer PING.
const startTimeout = 10 * time.Second

// Server is one redis-server process.
type Server struct {
	// Addr is 127.0.0.1:port.
	Addr string
	// Username and Password are what clients authenticate with (StartAuth);
	// empty: no authentication.
	Username, Password string

	// tls, when set, is how Do connects (StartTLS); set before the first
	// start, then only read.
	tls *tls.Config

	t    testing.TB
	port int
	dir  string
	args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *lockedWriter
}

// Binary returns the path of redis-server, failing t when it is missing.
func Binary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found: these tests need a real Redis (apt-get install redis-server, or run make test, which installs it)")
	}
	return p
}

// Start runs redis-server on a free loopback port with extra arguments
// (such as "--maxmemory", "1mb") and waits until it answers PING. The
// process is killed when the test ends.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	s := &Server{}
	return s.launch(t, func(port int) []string { return append(s.baseArgs(port), extra...) })
}

// StartAuth runs a server (as Start does) that requires password. Without
// username the password is the default user's (requirepass). With one, the
// password belongs to an ACL user of that name with every right, and the
// default user is off, so only username and password get in. Do
// authenticates by itself.
func StartAuth(t testing.TB, username, password string, extra ...string) *Server {
	t.Helper()
	s := &Server{Username: username, Password: password}
	auth := []string{"--requirepass", password}
	if username != "" {
		auth = []string{"--user", "default", "off", "--user", username, "on", ">" + password, "~*", "&*", "+@all"}
	}
	return s.launch(t, func(port int) []string { return append(append(s.baseArgs(port), auth...), extra...) })
}

// launch picks a free port, runs the server with args(port) and waits
// until it answers PING; the process is killed when the test ends.
func (s *Server) launch(t testing.TB, args func(port int) []string) *Server {
	t.Helper()
	bin := Binary(t)
	s.t = t
	if s.dir == "" {
		s.dir = t.TempDir()
	}
	var lastErr error
	for range 5 { // the free port may be taken between picking and binding
		s.port = freePort(t)
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
		s.args = args(s.port)
		if lastErr = s.start(bin); lastErr == nil {
			t.Cleanup(s.Kill)
			return s
		}
	}
	t.Fatalf("start redis-server: %v", lastErr)
	return nil
}

// baseArgs are the arguments of every data server: loopback, port, no
// persistence, logs to stdout.
func (s *Server) baseArgs(port int) []string {
	return []string{
		"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--daemonize", "no", "--logfile", "", "--protected-mode", "no",
	}
}

// Kill ends the server with SIGKILL (as a crash would) and waits for it.
// Killing a stopped server does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Restart starts the server again on the same port, empty (there is no
// persistence), and waits until it answers PING.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	bin := Binary(s.t)
	var err error
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		// The port can stay busy for a moment after the kill.
		if err = s.start(bin); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("restart redis-server on %s: %v", s.Addr, err)
}

// Running reports whether the process is alive.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Do sends one command over a fresh connection (authenticated, over TLS,
// as the server wants) and returns the reply's first line (such as "+OK",
// ":3", "*2" or "-ERR ..."), or a bulk string's text.
func (s *Server) Do(args ...string) (string, error) {
	r, err := s.do(args...)
	if err != nil {
		return "", err
	}
	if r.text != "" || r.items == nil {
		return r.text, nil
	}
	return "*" + strconv.Itoa(len(r.items)), nil
}

// Strings sends one command whose reply is an array of bulk strings (such
// as SENTINEL GET-MASTER-ADDR-BY-NAME) and returns them; a nil or an error
// reply is an error.
func (s *Server) Strings(args ...string) ([]string, error) {
	r, err := s.do(args...)
	if err != nil {
		return nil, err
	}
	if r.items == nil {
		return nil, fmt.Errorf("%s: reply %q, want an array", args[0], r.text)
	}
	return r.items, nil
}

// reply is a parsed reply: a first line or bulk text, or an array's
// elements (their texts).
type reply struct {
	text  string
	items []string
}

func (s *Server) do(args ...string) (reply, error) {
	d := &net.Dialer{Timeout: time.Second}
	var c net.Conn
	var err error
	if s.tls != nil {
		c, err = tls.DialWithDialer(d, "tcp", s.Addr, s.tls)
	} else {
		c, err = d.Dial("tcp", s.Addr)
	}
	if err != nil {
		return reply{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	rd := bufio.NewReader(c)
	if s.Password != "" {
		auth := []string{"AUTH", s.Password}
		if s.Username != "" {
			auth = []string{"AUTH", s.Username, s.Password}
		}
		r, err := roundTrip(c, rd, auth)
		if err != nil {
			return reply{}, err
		}
		if r.text != "+OK" {
			return reply{}, fmt.Errorf("AUTH: %s", r.text)
		}
	}
	return roundTrip(c, rd, args)
}

// roundTrip writes one command and reads its reply.
func roundTrip(w io.Writer, rd *bufio.Reader, args []string) (reply, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return reply{}, err
	}
	line, err := readLine(rd)
	if err != nil || !strings.HasPrefix(line, "*") {
		if err == nil && strings.HasPrefix(line, "$") {
			line, err = readBulk(rd, line)
		}
		return reply{text: line}, err
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil || n < 0 {
		return reply{text: line}, err
	}
	items := make([]string, 0, n)
	for range n {
		l, err := readLine(rd)
		if err == nil && strings.HasPrefix(l, "$") {
			l, err = readBulk(rd, l)
		}
		if err != nil {
			return reply{}, err
		}
		items = append(items, l)
	}
	return reply{items: items}, nil
}

func readLine(rd *bufio.Reader) (string, error) {
	line, err := rd.ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

// readBulk reads the text of the bulk string whose first line is line.
func readBulk(rd *bufio.Reader, line string) (string, error) {
	n, err := strconv.Atoi(line[1:])
	if err != nil || n < 0 {
		return line, err
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(rd, buf); err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// StartCluster runs a Redis Cluster of n masters (no replicas) on free
// loopback ports, the 16384 slots split between them, and waits until
// every node reports cluster_state:ok.
func StartCluster(t testing.TB, n int) []*Server {
	t.Helper()
	nodes := make([]*Server, n)
	for i := range nodes {
		nodes[i] = Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
	}
	per := 16384 / n
	for i, s := range nodes {
		from, to := i*per, (i+1)*per-1
		if i == n-1 {
			to = 16383
		}
		if r, err := s.Do("CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(from), strconv.Itoa(to)); err != nil || r != "+OK" {
			t.Fatalf("CLUSTER ADDSLOTSRANGE on %s = %q, %v", s.Addr, r, err)
		}
		if i > 0 {
			if r, err := s.Do("CLUSTER", "MEET", "127.0.0.1", strconv.Itoa(nodes[0].port)); err != nil || r != "+OK" {
				t.Fatalf("CLUSTER MEET on %s = %q, %v", s.Addr, r, err)
			}
		}
	}
	deadline := time.Now().Add(startTimeout)
	for _, s := range nodes {
		for {
			info, err := s.Do("CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(n)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Redis Cluster not ok within %v: %s", startTimeout, info)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nodes
}

// start runs the process and waits for PING; on failure the process is
// gone.
func (s *Server) start(bin string) error {
	cmd := exec.Command(bin, s.args...)
	out := &lockedWriter{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-done:
			return fmt.Errorf("redis-server exited at start: %s", out.String())
		default:
		}
		if r, err := s.Do("PING"); err == nil && r == "+PONG" {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("redis-server on %s did not answer PING within %v", s.Addr, startTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.mu.Lock()
	s.cmd, s.done, s.out = cmd, done, out
	s.mu.Unlock()
	return nil
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// lockedWriter collects the server's output.
type lockedWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
