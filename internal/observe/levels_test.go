package observe

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/altair-gateway/altair/internal/config"
)

func TestSubsystemLevels(t *testing.T) {
	var out bytes.Buffer
	levels := NewLevels(slog.LevelInfo)
	root := NewLogger(&out, "json", levels)
	proxy := Subsystem(root, SubsystemProxy)
	circuit := Subsystem(root, SubsystemCircuit).With("backend", "b1")

	proxy.Debug("p-debug-1")
	circuit.Info("c-info-1")
	// A reload turns proxy up to debug and circuit down to error; loggers
	// already handed out follow.
	levels.Apply(ParseLevels("info", map[string]string{"proxy": "debug", "circuit": "error"}))
	proxy.Debug("p-debug-2")
	circuit.Info("c-info-2")
	circuit.Error("c-error-2")
	root.Info("root-info-2")
	Subsystem(root, SubsystemAdmin).Debug("a-debug-2")

	var got []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("bad line %q: %v", line, err)
		}
		got = append(got, m["msg"].(string))
		if m["msg"] == "c-error-2" && (m["subsystem"] != "circuit" || m["backend"] != "b1") {
			t.Errorf("attributes lost: %v", m)
		}
	}
	want := []string{"c-info-1", "p-debug-2", "c-error-2", "root-info-2"}
	if !slices.Equal(got, want) {
		t.Fatalf("logged %v, want %v", got, want)
	}
}

// TestSubsystemNamesMatchConfig: validation accepts exactly the subsystems
// the gateway logs under.
func TestSubsystemNamesMatchConfig(t *testing.T) {
	if a, b := slices.Sorted(slices.Values(SubsystemNames())), slices.Sorted(slices.Values(config.LogSubsystems())); !slices.Equal(a, b) {
		t.Fatalf("observe subsystems %v != config.LogSubsystems %v", a, b)
	}
}
