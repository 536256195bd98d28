package wasmhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/altair-gateway/altair/internal/pluginapi"
)

// FactoryName is the name routes give the built-in WebAssembly plugin.
const FactoryName = "wasm"

// maxModuleBytes bounds a .wasm file read at load.
const maxModuleBytes = 64 << 20

// FactoryConfig is the configuration of one use of the "wasm" plugin.
type FactoryConfig struct {
	// Path is the .wasm file, relative to the config file's directory.
	// Required.
	Path string `yaml:"path"`
	// GuestConfig is what the guest reads with get_config: a string as is,
	// anything else encoded as JSON. Default: empty.
	GuestConfig any `yaml:"guest_config"`
	// MemoryLimitPages caps each instance's memory in 64 KiB pages.
	// Default DefaultMemoryLimitPages.
	MemoryLimitPages uint32 `yaml:"memory_limit_pages"`
	// Timeout is each guest call's deadline. Default DefaultTimeout.
	Timeout time.Duration `yaml:"timeout"`
	// PoolSize is how many idle instances are kept once the load drops
	// (Options.PoolSize). Default GOMAXPROCS.
	PoolSize int `yaml:"pool_size"`
	// MaxBodyBytes caps a body buffered for the guest. Default
	// DefaultMaxBodyBytes.
	MaxBodyBytes int `yaml:"max_body_bytes"`
}

// Factory is the built-in "wasm" plugin: it runs an http-wasm guest read
// from a file, through rt. A config reload reads the file again, so a
// changed module is loaded then (an unchanged one is not compiled again).
func Factory(rt *Runtime) pluginapi.Factory {
	return pluginapi.Factory{Name: FactoryName, New: func(c pluginapi.Config) (pluginapi.Middleware, error) {
		var fc FactoryConfig
		if err := c.Decode(&fc); err != nil {
			return nil, err
		}
		if fc.Path == "" {
			return nil, errors.New("path is required: the .wasm file")
		}
		if fc.Timeout < 0 || fc.PoolSize < 0 || fc.MaxBodyBytes < 0 {
			return nil, errors.New("timeout, pool_size and max_body_bytes must not be negative")
		}
		path := fc.Path
		if !filepath.IsAbs(path) && c.Dir() != "" {
			path = filepath.Join(c.Dir(), path)
		}
		mod, err := readModule(path)
		if err != nil {
			return nil, err
		}
		guest, err := guestConfig(fc.GuestConfig)
		if err != nil {
			return nil, err
		}
		var counter interface{ CountError() }
		if ec, ok := c.(interface{ CountError() }); ok {
			counter = ec
		}
		p, err := rt.Load(context.Background(), Options{
			Name:             strings.TrimSuffix(filepath.Base(path), ".wasm"),
			Module:           mod,
			Config:           guest,
			MemoryLimitPages: fc.MemoryLimitPages,
			Timeout:          fc.Timeout,
			PoolSize:         fc.PoolSize,
			MaxBodyBytes:     fc.MaxBodyBytes,
			Log:              c.Logger(),
			Observer:         failureCounter{counter},
		})
		if err != nil {
			return nil, err
		}
		c.OnClose(func() { _ = p.Close(context.Background()) })
		return p.Wrap, nil
	}}
}

// readModule reads a .wasm file of at most maxModuleBytes.
func readModule(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxModuleBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxModuleBytes {
		return nil, fmt.Errorf("%s is larger than %d MiB", path, maxModuleBytes>>20)
	}
	return b, nil
}

// guestConfig encodes v for get_config: a string as is, nil as nothing,
// anything else as JSON.
func guestConfig(v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []byte(x), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("guest_config: %w", err)
	}
	return b, nil
}

// failureCounter counts failed requests (traps, deadlines) in the
// gateway's plugin_errors_total.
type failureCounter struct{ c interface{ CountError() } }

func (f failureCounter) Observe(_ string, _ time.Duration, failed bool) {
	if failed && f.c != nil {
		f.c.CountError()
	}
}
