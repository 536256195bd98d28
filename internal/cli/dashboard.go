package cli

import (
	"context"
	"io"
	"os"
	"strings"

	"github.com/altair-gateway/altair/internal/admin/dashboard"
	"github.com/altair-gateway/altair/internal/gateway"
)

// recentLogLines is how many log lines the dashboard keeps for its pane.
const recentLogLines = 200

// terminalView is `altair run`'s live dashboard. It draws only when stdout
// is a terminal and neither -dashboard=false nor ALTAIR_DASHBOARD=off says
// otherwise.
//
// The logs go through it: every line is kept for the dashboard's pane and
// written to stderr, except while the dashboard draws and stderr is a
// terminal as well (then the lines would scribble over the screen, so the
// pane is where they show). Stopping the dashboard sends the rest of the
// run's logs to stderr again.
type terminalView struct {
	stderr io.Writer
	tty    *os.File        // stdout; nil when the dashboard does not draw
	logs   *dashboard.Logs // nil when the dashboard does not draw
	hold   bool            // stderr is a terminal
	color  bool
	dash   *dashboard.Dashboard
}

func newTerminalView(on bool, stdout, stderr io.Writer, environ []string) *terminalView {
	v := &terminalView{stderr: stderr}
	if !on || !dashboardWanted(environ) || !dashboard.IsTerminal(stdout) {
		return v
	}
	tty := stdout.(*os.File)
	if dashboard.EnableTerminal(tty) != nil {
		return v
	}
	v.tty = tty
	v.logs = dashboard.NewLogs(stderr, recentLogLines)
	v.hold = dashboard.IsTerminal(stderr)
	v.color = getenv(environ, "NO_COLOR") == ""
	return v
}

// dashboardWanted is false when ALTAIR_DASHBOARD turns the dashboard off, or
// when TERM says the terminal cannot place the cursor.
func dashboardWanted(environ []string) bool {
	switch strings.ToLower(getenv(environ, "ALTAIR_DASHBOARD")) {
	case "off", "false", "0", "no":
		return false
	}
	return getenv(environ, "TERM") != "dumb"
}

// getenv returns the last value of key in environ.
func getenv(environ []string, key string) string {
	for i := len(environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(environ[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// logOut is the writer for the gateway's logger.
func (v *terminalView) logOut() io.Writer {
	if v.logs == nil {
		return v.stderr
	}
	return v.logs
}

// accessOut is the writer for the access log: held with the other logs, but
// not kept for the pane, where a line per request would push the gateway's
// own lines out.
func (v *terminalView) accessOut() io.Writer {
	if v.logs == nil {
		return v.stderr
	}
	return v.logs.Unkept()
}

// start draws the dashboard until stop, if it is to be drawn.
func (v *terminalView) start(gw *gateway.Gateway, addr string) {
	if v.tty == nil || v.dash != nil {
		return
	}
	v.dash = dashboard.New(dashboard.Options{
		Snapshot: gw.Snapshot,
		Out:      v.tty,
		Addr:     addr,
		Color:    v.color,
		Logs:     v.logs,
		HoldLogs: v.hold,
	})
	v.dash.Start(context.Background())
}

// stop restores the terminal and gives the logs back to stderr. It is safe
// to call more than once.
func (v *terminalView) stop() {
	if v.dash != nil {
		v.dash.Close()
	}
}
