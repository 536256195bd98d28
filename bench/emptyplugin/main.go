// Command emptyplugin is Altair with a compiled-in Go plugin that does
// nothing: "empty" returns the next handler as it is. bench/run.sh builds it
// for the altair-plugin-go target, to measure what a compiled-in plugin
// costs over the plain proxy.
package main

import (
	"net/http"

	"github.com/altair-gateway/altair/plugin"
)

func main() {
	plugin.Main(plugin.Factory{Name: "empty", New: func(plugin.Config) (plugin.Middleware, error) {
		return func(next http.Handler) http.Handler { return next }, nil
	}})
}
