//go:build windows

package dashboard

import (
	"os"

	"golang.org/x/sys/windows"
)

// EnableTerminal turns on the console's processing of escape sequences,
// which the dashboard draws with (Windows 10 and later; an older console
// returns an error and the dashboard does not draw).
func EnableTerminal(f *os.File) error {
	h := windows.Handle(f.Fd())
	var mode uint32
	if err := windows.GetConsoleMode(h, &mode); err != nil {
		return err
	}
	return windows.SetConsoleMode(h, mode|windows.ENABLE_VIRTUAL_TERMINAL_PROCESSING|windows.ENABLE_PROCESSED_OUTPUT)
}
