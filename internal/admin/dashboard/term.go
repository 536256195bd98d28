package dashboard

import (
	"io"
	"os"

	"golang.org/x/term"
)

// IsTerminal reports whether w is a terminal (a console on Windows).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// termSize reads f's size in columns and rows; the dashboard calls it once a
// frame, so a resized window is followed within a frame.
func termSize(f *os.File) func() (int, int, error) {
	return func() (int, int, error) { return term.GetSize(int(f.Fd())) }
}
