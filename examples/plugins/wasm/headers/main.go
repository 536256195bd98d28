//go:build wasip1

// Command headers is a plugin that edits headers from its configuration, a
// JSON object:
//
//	{
//	  "request_headers":  {"X-Hello": "world"},   set on the request
//	  "remove_request_headers": ["X-Secret"],      removed from the request
//	  "response_headers": {"X-Plugin": "headers"}, set on the response
//	  "method": "PUT",                             replaces the method
//	  "path_prefix": {"from": "/old/", "to": "/new/"}, rewrites the URI
//	  "echo_header": "X-Id"                        copied to the response as X-Echo-Id
//	}
//
// echo_header keeps the value between handle_request and handle_response in
// a global: it is safe because an instance serves one request at a time, and
// the host's tests use it to prove that.
package main

import (
	"encoding/json"
	"strings"

	"github.com/altair-gateway/altair/examples/plugins/wasm/internal/abi"
)

type config struct {
	RequestHeaders       map[string]string         `json:"request_headers"`
	RemoveRequestHeaders []string                  `json:"remove_request_headers"`
	ResponseHeaders      map[string]string         `json:"response_headers"`
	Method               string                    `json:"method"`
	PathPrefix           struct{ From, To string } `json:"path_prefix"`
	EchoHeader           string                    `json:"echo_header"`
}

var (
	cfg  config
	echo string // the echo_header value of the request in progress
)

func init() {
	if c := abi.Config(); len(c) > 0 {
		if err := json.Unmarshal(c, &cfg); err != nil {
			panic("headers: bad config: " + err.Error())
		}
	}
	abi.HandleRequest = handleRequest
	abi.HandleResponse = handleResponse
}

func handleRequest() (bool, uint32) {
	for k, v := range cfg.RequestHeaders {
		abi.SetHeader(abi.HeaderRequest, k, v)
	}
	for _, k := range cfg.RemoveRequestHeaders {
		abi.RemoveHeader(abi.HeaderRequest, k)
	}
	if cfg.Method != "" {
		abi.SetMethod(cfg.Method)
	}
	if cfg.PathPrefix.From != "" {
		if rest, ok := strings.CutPrefix(abi.URI(), cfg.PathPrefix.From); ok {
			abi.SetURI(cfg.PathPrefix.To + rest)
		}
	}
	// Response headers set before the next handler go out with its answer.
	for k, v := range cfg.ResponseHeaders {
		abi.SetHeader(abi.HeaderResponse, k, v)
	}
	echo = ""
	if cfg.EchoHeader != "" {
		echo = abi.Header(abi.HeaderRequest, cfg.EchoHeader)
		return true, 1 // request context 1: handle_response has work to do
	}
	return true, 0
}

func handleResponse(reqCtx uint32, isError bool) {
	if reqCtx != 1 || isError {
		return
	}
	// Without buffer_response the answer has gone out: the echo goes to
	// the plugin log, where the host's tests read it back.
	abi.Log(abi.LogInfo, "echo "+echo)
}

func main() {}
