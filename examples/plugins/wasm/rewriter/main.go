//go:build wasip1

// Command rewriter is a plugin that buffers the upstream's response and
// replaces a word in its body, then fixes Content-Length. Configuration:
//
//	{"from": "world", "to": "WebAssembly"}
package main

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/altair-gateway/altair/examples/plugins/wasm/internal/abi"
)

type config struct {
	From string `json:"from"`
	To   string `json:"to"`
}

var cfg config

func init() {
	if c := abi.Config(); len(c) > 0 {
		if err := json.Unmarshal(c, &cfg); err != nil {
			panic("rewriter: bad config: " + err.Error())
		}
	}
	if abi.EnableFeatures(abi.FeatureBufferResponse)&abi.FeatureBufferResponse == 0 {
		panic("rewriter: the host cannot buffer responses")
	}
	abi.HandleResponse = handleResponse
}

func handleResponse(_ uint32, isError bool) {
	if isError || cfg.From == "" {
		return
	}
	body, _ := abi.ReadBody(abi.BodyResponse, 1<<30)
	if !bytes.Contains(body, []byte(cfg.From)) {
		return // untouched: the host sends the buffered body as it was
	}
	body = bytes.ReplaceAll(body, []byte(cfg.From), []byte(cfg.To))
	abi.WriteBody(abi.BodyResponse, body)
	abi.SetHeader(abi.HeaderResponse, "Content-Length", strconv.Itoa(len(body)))
	abi.SetHeader(abi.HeaderResponse, "X-Rewritten", "1")
}

func main() {}
