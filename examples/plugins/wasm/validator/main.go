//go:build wasip1

// Command validator is a plugin that checks a request body before the
// upstream sees it: the body must be a JSON object holding every field in
// the configuration's "required" list, or the plugin answers 400 itself.
// Requests without a body (GET, HEAD, ...) pass. Configuration:
//
//	{"required": ["name"], "max_bytes": 65536}
//
// It enables buffer_request so the upstream still receives the body the
// plugin read.
package main

import (
	"encoding/json"
	"strconv"

	"github.com/altair-gateway/altair/examples/plugins/wasm/internal/abi"
)

type config struct {
	Required []string `json:"required"`
	MaxBytes int      `json:"max_bytes"`
}

var cfg = config{MaxBytes: 64 << 10}

func init() {
	if c := abi.Config(); len(c) > 0 {
		if err := json.Unmarshal(c, &cfg); err != nil {
			panic("validator: bad config: " + err.Error())
		}
	}
	abi.EnableFeatures(abi.FeatureBufferRequest)
	abi.HandleRequest = handleRequest
}

func reject(msg string) (bool, uint32) {
	body := `{"error":"invalid_body","detail":` + strconv.Quote(msg) + "}\n"
	abi.SetStatusCode(400)
	abi.SetHeader(abi.HeaderResponse, "Content-Type", "application/json")
	abi.WriteBody(abi.BodyResponse, []byte(body))
	return false, 0
}

func handleRequest() (bool, uint32) {
	switch abi.Method() {
	case "GET", "HEAD", "OPTIONS", "DELETE":
		return true, 0
	}
	body, ok := abi.ReadBody(abi.BodyRequest, cfg.MaxBytes)
	if !ok {
		return reject("body too large")
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		return reject("body is not a JSON object")
	}
	for _, f := range cfg.Required {
		if _, ok := doc[f]; !ok {
			return reject("missing field " + f)
		}
	}
	return true, 0
}

func main() {}
