// Package pluginapi defines the middleware model shared by Altair's own
// plugins and users' plugins: a named Factory that receives its decoded
// configuration and returns a handler wrapper. The public package
// github.com/altair-gateway/altair/plugin re-exports these types; this one
// exists so that the gateway's internal packages can use them without an
// import cycle.
package pluginapi

import (
	"fmt"
	"log/slog"
	"net/http"
)

// Middleware wraps the rest of a route's chain. It runs once per request,
// possibly on many goroutines at once; it must not keep per-request state
// outside the request.
type Middleware = func(next http.Handler) http.Handler

// Factory makes a plugin's middleware from one use of it in a route's
// plugins list.
type Factory struct {
	// Name is what routes call the plugin: plugins: [{name: NAME, config:
	// {...}}]. Lower-case letters, digits, '-', '_' and '.'; unique among
	// the plugins of a binary.
	Name string
	// New decodes c and returns the middleware, or an error that names
	// what is wrong with the configuration (Altair adds the YAML path and
	// line). It is called when a config is loaded, validated or reloaded,
	// once per route that lists the plugin, so it must not do slow work
	// (network) or keep global state.
	New func(c Config) (Middleware, error)
}

// Config is what a Factory receives for one use of its plugin.
type Config interface {
	// Decode decodes the use's config: mapping into v, strictly (a key v
	// has no field for is an error). An absent config decodes nothing and
	// leaves v as it is.
	Decode(v any) error
	// Route is the name of the route the plugin is used in.
	Route() string
	// Logger is the plugin's logger (subsystem "plugin", with the plugin
	// and route names).
	Logger() *slog.Logger
	// OnClose registers fn to run when the middleware is no longer used:
	// after a reload replaced the route's config and its requests
	// finished, or at shutdown. For resources the middleware holds.
	OnClose(fn func())
	// Dir is the directory of the config file, against which relative
	// paths in the plugin's config are resolved ("" without a file).
	Dir() string
}

// ValidName reports whether name is a usable plugin name.
func ValidName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case (c == '-' || c == '_' || c == '.') && i > 0:
		default:
			return false
		}
	}
	return true
}

// Registry holds the factories of a binary, by name.
type Registry struct {
	byName map[string]Factory
	names  []string
}

// NewRegistry checks and indexes factories: each needs a valid, unique name
// and a New function.
func NewRegistry(factories ...Factory) (*Registry, error) {
	r := &Registry{byName: make(map[string]Factory, len(factories))}
	for _, f := range factories {
		if !ValidName(f.Name) {
			return nil, fmt.Errorf("plugin name %q: want lower-case letters, digits, '-', '_' or '.'", f.Name)
		}
		if f.New == nil {
			return nil, fmt.Errorf("plugin %q: no New function", f.Name)
		}
		if _, dup := r.byName[f.Name]; dup {
			return nil, fmt.Errorf("plugin %q registered twice", f.Name)
		}
		r.byName[f.Name] = f
		r.names = append(r.names, f.Name)
	}
	return r, nil
}

// Lookup returns the factory called name.
func (r *Registry) Lookup(name string) (Factory, bool) {
	if r == nil {
		return Factory{}, false
	}
	f, ok := r.byName[name]
	return f, ok
}

// Names lists the registered names in registration order.
func (r *Registry) Names() []string {
	if r == nil {
		return nil
	}
	return r.names
}
