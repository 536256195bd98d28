// Package stamp is an example compiled-in Altair plugin: it sets a request
// header for the backend and, optionally, a response header for the client,
// and can refuse requests that lack a header.
//
//	plugins:
//	  - name: stamp
//	    config:
//	      header: X-Tenant        # set on the request to the backend
//	      value: acme
//	      response_header: X-Served-By
//	      response_value: altair-custom
//	      require: X-Api-Version  # 400 without it
package stamp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/altair-gateway/altair/plugin"
)

// Config is the plugin's configuration.
type Config struct {
	Header         string `yaml:"header"`
	Value          string `yaml:"value"`
	ResponseHeader string `yaml:"response_header"`
	ResponseValue  string `yaml:"response_value"`
	Require        string `yaml:"require"`
}

// Factory returns the plugin, to pass to plugin.Main.
func Factory() plugin.Factory {
	return plugin.Factory{Name: "stamp", New: New}
}

// New builds the middleware of one use of the plugin. Everything the
// request path needs is computed here, once.
func New(c plugin.Config) (plugin.Middleware, error) {
	var cfg Config
	if err := c.Decode(&cfg); err != nil {
		return nil, err
	}
	if cfg.Header == "" && cfg.ResponseHeader == "" && cfg.Require == "" {
		return nil, errors.New("set at least one of header, response_header and require")
	}
	if (cfg.Header == "") != (cfg.Value == "") || (cfg.ResponseHeader == "") != (cfg.ResponseValue == "") {
		return nil, errors.New("header and value (response_header and response_value) go together")
	}
	header := http.CanonicalHeaderKey(cfg.Header)
	respHeader := http.CanonicalHeaderKey(cfg.ResponseHeader)
	require := http.CanonicalHeaderKey(cfg.Require)
	value, respValue := []string{cfg.Value}, []string{cfg.ResponseValue}
	refusal, _ := json.Marshal(map[string]string{"error": "missing_header", "message": fmt.Sprintf("the %s header is required", require)})
	c.Logger().Info("stamp plugin ready", "header", header, "response_header", respHeader, "require", require)

	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if require != "" && r.Header.Get(require) == "" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write(refusal)
				return
			}
			if header != "" {
				r.Header[header] = value // shared, never modified: no allocation
			}
			if respHeader != "" {
				w.Header()[respHeader] = respValue
			}
			next.ServeHTTP(w, r)
		})
	}, nil
}
