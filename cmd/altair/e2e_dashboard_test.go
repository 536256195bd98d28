package main

// End-to-end tests of the terminal dashboard: the real binary in a tmux
// pseudo-terminal, read back with capture-pane, and with stdout a pipe.

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// tmuxServer is a tmux server of the test's own, on a private socket in the
// test's temporary directory, killed at the end of the test. Should the test
// binary die first, the server still ends by itself: each pane's shell exits
// a minute after altair, and a server without sessions exits.
type tmuxServer struct {
	t      *testing.T
	socket string
	dir    string
	conf   string
}

var tmuxServers atomic.Int64

// newTmux fails the test (it does not skip it) when tmux is missing:
// scripts/test.sh installs it.
func newTmux(t *testing.T) *tmuxServer {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatalf("tmux is needed to drive the dashboard in a terminal (scripts/test.sh installs it): %v", err)
	}
	s := &tmuxServer{
		t:      t,
		socket: fmt.Sprintf("altair-test-%d-%d", os.Getpid(), tmuxServers.Add(1)),
		dir:    t.TempDir(),
	}
	// No user's tmux config applies.
	s.conf = filepath.Join(s.dir, "tmux.conf")
	writeFile(t, s.conf, "")
	t.Cleanup(func() { _ = s.cmd("kill-server").Run() })
	return s
}

func (s *tmuxServer) cmd(args ...string) *exec.Cmd {
	cmd := exec.Command("tmux", append([]string{"-L", s.socket, "-f", s.conf}, args...)...)
	env := []string{"TMUX_TMPDIR=" + s.dir}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TMUX=") && !strings.HasPrefix(kv, "TMUX_TMPDIR=") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	return cmd
}

func (s *tmuxServer) run(args ...string) string {
	s.t.Helper()
	out, err := s.cmd(args...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// start runs altair with args in a new 120x40 session called name. The
// shell around it ignores SIGINT (so that Ctrl-C reaches altair alone),
// prints altair's exit status and stays, so the screen can be read after.
// Everything written to the pane is also copied to the file s.raw(name).
func (s *tmuxServer) start(name, cfg string, env string, args ...string) (cfgPath string) {
	s.t.Helper()
	cfgPath = filepath.Join(s.dir, name+".yaml")
	writeFile(s.t, cfgPath, cfg)
	script := filepath.Join(s.dir, name+".sh")
	writeFile(s.t, script, fmt.Sprintf(`unset NO_COLOR ALTAIR_DASHBOARD
%s
trap '' INT
cd %q
%q run -c %q %s
echo "altair exited with status $?"
exec sleep 60
`, env, s.dir, altairBin, cfgPath, strings.Join(args, " ")))
	// pipe-pane comes in the same command list, before the server reads
	// the pane's first output.
	s.run("new-session", "-d", "-s", name, "-x", "120", "-y", "40", "sh "+script,
		";", "pipe-pane", "-t", name, "-o", fmt.Sprintf("cat > '%s'", s.raw(name)))
	return cfgPath
}

func (s *tmuxServer) raw(name string) string { return filepath.Join(s.dir, name+".out") }

// clip is the last n bytes of s, for failure messages.
func clip(s string, n int) string { return s[max(len(s)-n, 0):] }

func (s *tmuxServer) screen(name string) string {
	s.t.Helper()
	return s.run("capture-pane", "-p", "-t", name)
}

// modes returns whether the pane is on the alternate screen and whether its
// cursor is shown.
func (s *tmuxServer) modes(name string) (alternate, cursor bool) {
	s.t.Helper()
	f := strings.Fields(s.run("display-message", "-p", "-t", name, "#{alternate_on} #{cursor_flag}"))
	return len(f) == 2 && f[0] == "1", len(f) == 2 && f[1] == "1"
}

// waitScreen polls the pane until cond accepts it, and returns it.
func (s *tmuxServer) waitScreen(name, what string, d time.Duration, cond func(string) bool) string {
	s.t.Helper()
	deadline := time.Now().Add(d)
	for {
		sc := s.screen(name)
		if cond(sc) {
			return sc
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out after %v waiting for %s; screen:\n%s", d, what, sc)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func dashboardCfg(live, dead string) string {
	return header("", "") + fmt.Sprintf(`
upstreams:
  pool:
    load_balancing: round-robin
    health_check: { interval: 100ms, fall: 1, rise: 1 }
    backends:
      - url: %s
      - url: %s
routes:
  - name: web
    match: { prefix: / }
    upstream: pool
`, live, dead)
}

func TestE2EDashboardInTerminal(t *testing.T) {
	t.Parallel()
	tm := newTmux(t)
	live := backend(t, "live")
	dead := deadURL(t)
	cfgPath := tm.start("dash", dashboardCfg(live.URL, dead), "")

	listening := regexp.MustCompile(`listening on 127\.0\.0\.1:(\d+)`)
	sc := tm.waitScreen("dash", "the dashboard's header", 10*time.Second, func(s string) bool {
		return listening.MatchString(s) || strings.Contains(s, "altair exited")
	})
	m := listening.FindStringSubmatch(sc)
	if m == nil {
		t.Fatalf("altair did not start:\n%s", sc)
	}
	if alt, cursor := tm.modes("dash"); !alt || cursor {
		t.Errorf("while drawing: alternate screen %v, cursor shown %v; want the alternate screen, cursor hidden", alt, cursor)
	}
	base := "http://127.0.0.1:" + m[1]
	waitFor(t, 5*time.Second, "ready", func() bool {
		resp, err := http.Get(base + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	// The health checker takes the dead backend out; then every request
	// goes to the live one.
	tm.waitScreen("dash", "the dead backend marked down", 10*time.Second, func(s string) bool {
		return strings.Contains(s, dead[len("http://"):]+"  down")
	})
	const n = 25
	for i := range n {
		if code, body, _ := get(t, fmt.Sprintf("%s/item/%d", base, i)); code != 200 || !strings.HasPrefix(body, "live ") {
			t.Fatalf("GET /item/%d = %d %q, want 200 from live", i, code, body)
		}
	}
	// A reload while the dashboard draws logs a line: it shows in the
	// dashboard's pane, and not on the terminal underneath.
	tmp := cfgPath + ".tmp"
	writeFile(t, tmp, dashboardCfg(live.URL, dead)+"# reloaded\n")
	if err := os.Rename(tmp, cfgPath); err != nil {
		t.Fatal(err)
	}

	rows := []*regexp.Regexp{
		regexp.MustCompile(fmt.Sprintf(`(?m)^Requests %d\b`, n)),
		regexp.MustCompile(`(?m)^Responses\s+2xx ` + fmt.Sprint(n) + `\b`),
		regexp.MustCompile(fmt.Sprintf(`(?m)^web\s+pool\s+%d\s`, n)),
		regexp.MustCompile(`(?m)^pool\s+` + regexp.QuoteMeta(live.URL) + `\s+up\s+closed\b`),
		regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(dead) + `\s+down\s`),
		regexp.MustCompile(`(?m)^Reloads\s+ok 2\b`),
		regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d INFO altair started\b`),
		regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d INFO config reloaded\b`),
	}
	sc = tm.waitScreen("dash", "the traffic and the reload on the dashboard", 10*time.Second, func(s string) bool {
		for _, re := range rows {
			if !re.MatchString(s) {
				return false
			}
		}
		return true
	})
	if strings.Contains(sc, `{"time"`) {
		t.Errorf("a raw log line is on the dashboard:\n%s", sc)
	}

	// Ctrl-C: the screen and the cursor come back, the shutdown is logged
	// on the terminal again, and altair exits 0.
	tm.run("send-keys", "-t", "dash", "C-c")
	sc = tm.waitScreen("dash", "altair to exit", 15*time.Second, func(s string) bool {
		return strings.Contains(s, "altair exited with status")
	})
	if !strings.Contains(sc, "altair exited with status 0") {
		t.Errorf("altair did not exit 0 after Ctrl-C:\n%s", sc)
	}
	if alt, cursor := tm.modes("dash"); alt || !cursor {
		t.Errorf("after exit: alternate screen %v, cursor shown %v; want the normal screen with its cursor", alt, cursor)
	}
	if strings.Contains(sc, "RECENT LOGS") || strings.Contains(sc, "Requests ") {
		t.Errorf("the dashboard is still on the screen after exit:\n%s", sc)
	}
	for _, want := range []string{`"msg":"altair started"`, `"msg":"shutting down"`, `"msg":"stopped"`} {
		if !strings.Contains(strings.ReplaceAll(sc, "\n", ""), want) {
			t.Errorf("the terminal after exit lacks the log line %s:\n%s", want, sc)
		}
	}
	if strings.Contains(sc, "config reloaded") {
		t.Errorf("a line logged while the dashboard drew was written over it:\n%s", sc)
	}
	// The bytes the terminal got: logs, then the dashboard with no raw log
	// line in it, then logs again.
	raw, err := os.ReadFile(tm.raw("dash"))
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok := strings.Cut(string(raw), "\x1b[?1049h")
	drawn, after, ok2 := strings.Cut(rest, "\x1b[?1049l")
	if !ok || !ok2 {
		t.Fatalf("the terminal never entered and left the alternate screen: ...%q", clip(string(raw), 2000))
	}
	if !strings.Contains(before, `"msg":"altair started"`) || !strings.Contains(after, `"msg":"shutting down"`) {
		t.Errorf("logs do not go to the terminal before and after the dashboard:\nbefore: ...%q\nafter: ...%q", clip(before, 1000), clip(after, 1000))
	}
	if i := strings.Index(drawn, `{"time"`); i >= 0 {
		t.Errorf("a raw log line was written while the dashboard drew: %q", drawn[i:min(len(drawn), i+200)])
	}
}

// With the dashboard turned off, or on a terminal that cannot place the
// cursor, the terminal gets the plain log lines.
func TestE2EDashboardTurnedOff(t *testing.T) {
	t.Parallel()
	tm := newTmux(t)
	live := backend(t, "live")
	tests := []struct {
		name string
		env  string
		args []string
	}{
		{"flag", "", []string{"-dashboard=false"}},
		{"env", "export ALTAIR_DASHBOARD=off", nil},
		{"dumb", "export TERM=dumb", nil},
	}
	for _, tt := range tests {
		tm.start(tt.name, dashboardCfg(live.URL, live.URL), tt.env, tt.args...)
	}
	for _, tt := range tests {
		sc := tm.waitScreen(tt.name, "the start", 10*time.Second, func(s string) bool {
			s = strings.ReplaceAll(s, "\n", "")
			return strings.Contains(s, `"msg":"altair started"`) || strings.Contains(s, "altair exited") || strings.Contains(s, "RECENT LOGS")
		})
		if alt, _ := tm.modes(tt.name); alt || strings.Contains(sc, "RECENT LOGS") || strings.Contains(sc, "altair exited") {
			t.Errorf("%s: want plain logs and no dashboard (alternate screen %v):\n%s", tt.name, alt, sc)
		}
		tm.run("send-keys", "-t", tt.name, "C-c")
	}
	for _, tt := range tests {
		sc := tm.waitScreen(tt.name, "altair to exit", 15*time.Second, func(s string) bool {
			return strings.Contains(s, "altair exited with status")
		})
		if !strings.Contains(sc, "altair exited with status 0") {
			t.Errorf("%s: altair did not exit 0 after Ctrl-C:\n%s", tt.name, sc)
		}
	}
}

// With stdout a pipe (a service manager, a container log), nothing is drawn:
// not one byte reaches stdout, and the logs go to stderr as usual.
func TestE2EDashboardNotDrawnWithoutTerminal(t *testing.T) {
	t.Parallel()
	live := backend(t, "live")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := strings.Replace(dashboardCfg(live.URL, live.URL), `listen: "127.0.0.1:0"`, fmt.Sprintf("listen: %q", addr), 1)
	path := filepath.Join(t.TempDir(), "altair.yaml")
	writeFile(t, path, cfg)

	var stdout, stderr bytes.Buffer
	cmd := exec.Command(altairBin, "run", "-c", path)
	// A terminal type and a dashboard asked for: only the missing terminal
	// keeps it from drawing.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "TERM=xterm-256color", "ALTAIR_DASHBOARD=on"}
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var exitErr error
	exited := make(chan struct{})
	go func() {
		exitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	waitFor(t, 10*time.Second, "ready", func() bool {
		resp, err := http.Get("http://" + addr + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	for i := range 5 {
		if code, _, _ := get(t, fmt.Sprintf("http://%s/%d", addr, i)); code != 200 {
			t.Fatalf("GET /%d = %d, want 200", i, code)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if exitErr != nil {
			t.Fatalf("altair exit after SIGTERM: %v, want status 0\n%s", exitErr, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("altair did not exit after SIGTERM")
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout is not a terminal, yet altair wrote %d bytes to it: %q", stdout.Len(), stdout.String()[:min(stdout.Len(), 200)])
	}
	for _, want := range []string{`"msg":"altair started"`, `"msg":"stopped"`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %s:\n%s", want, stderr.String())
		}
	}
}
