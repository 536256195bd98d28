package config

import (
	"fmt"
	"slices"
	"strings"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Path locates the offending value: a YAML path such as
	// "routes[2].backends[0].url", or the name of the environment variable the
	// value came from, such as "CONNECTION_TIMEOUT". Empty for problems with the
	// file as a whole.
	Path string
	// Line is the line of Path's key in the YAML file; 0 when unknown or when the
	// value came from the environment.
	Line int
	// Msg says what is wrong, as a lowercase phrase.
	Msg string
}

// Error formats the problem as
// "routes[2].backends[0].url (line 41): scheme must be http or https".
func (p Problem) Error() string {
	switch {
	case p.Path == "" && p.Line == 0:
		return p.Msg
	case p.Path == "":
		return fmt.Sprintf("line %d: %s", p.Line, p.Msg)
	case p.Line == 0:
		return p.Path + ": " + p.Msg
	default:
		return fmt.Sprintf("%s (line %d): %s", p.Path, p.Line, p.Msg)
	}
}

// Problems is every problem found in a configuration. It is the error that Load
// and Validate return; match it with errors.As.
type Problems []Problem

// Error lists the problems one per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// err returns ps as an error, or a nil error when there are no problems (never
// a non-nil interface holding an empty list).
func (ps Problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// sorted orders problems with a line by that line, followed by those without one
// in the order they were found; both sorts are stable so that problems on one
// line keep their order.
func (ps Problems) sorted() Problems {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		switch {
		case a.Line == b.Line:
			return 0
		case a.Line == 0:
			return 1
		case b.Line == 0:
			return -1
		default:
			return a.Line - b.Line
		}
	})
	return ps
}
