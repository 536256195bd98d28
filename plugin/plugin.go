// Package plugin is Altair's Go API for compiled-in plugins: the one
// package outside internal/. A plugin is a named Factory that receives its
// decoded configuration and returns a handler wrapper; routes list it in
// YAML like any other middleware:
//
//	routes:
//	  - name: api
//	    match: {prefix: /api/}
//	    backends: [{url: "http://127.0.0.1:8080"}]
//	    plugins:
//	      - name: stamp
//	        config: {header: X-Tenant, value: acme}
//
// A binary with plugins is a main package of a few lines that passes them
// in; there is no init-time registry:
//
//	func main() {
//		plugin.Main(stamp.Factory())
//	}
//
// The binary is the whole altair command line (run, validate, explain,
// health, version) with the built-in "wasm" plugin and these. See
// docs/plugins.md and examples/plugins/go for a complete example.
package plugin

import (
	"os"

	"github.com/altair-gateway/altair/internal/cli"
	"github.com/altair-gateway/altair/internal/pluginapi"
)

// Factory makes a plugin's middleware from one use of it in a route's
// plugins list. Name is what routes call it; New decodes the configuration
// and returns the middleware, or an error naming what is wrong in it.
type Factory = pluginapi.Factory

// Config is what a Factory's New receives: Decode (strict YAML decoding of
// the use's config), Route, Logger, OnClose and Dir.
type Config = pluginapi.Config

// Middleware wraps the rest of a route's chain.
type Middleware = pluginapi.Middleware

// Version is what `altair version`, /health and the build-info metric report
// for a binary built with Main; set it with
// -ldflags "-X github.com/altair-gateway/altair/plugin.Version=1.2.3".
var Version = "dev"

// Main runs the altair command line with factories compiled in and exits
// with its status.
func Main(factories ...Factory) {
	os.Exit(Run(os.Args[1:], factories...))
}

// Run is Main without the exit: it runs the command line args (without the
// program name) and returns the exit status.
func Run(args []string, factories ...Factory) int {
	return cli.Main(args, os.Stdout, os.Stderr, os.Environ(), cli.Options{Version: Version, Plugins: factories})
}
