//go:build !windows

package dashboard

import "os"

// EnableTerminal prepares f for the dashboard's escape sequences. Terminals
// outside Windows process them already.
func EnableTerminal(f *os.File) error { return nil }
