//go:build wasip1

// Command inspect is a plugin for looking at what a guest sees. The request
// header X-Inspect chooses what it does:
//
//	answer  answers the request itself with a JSON object: method, URI,
//	        protocol, client address and every request header (names as
//	        the host gives them, lower-case)
//	upper   replaces the request body with its upper-case copy and adds
//	        two values of X-Inspected before passing the request on
//	early   sets status 203 and writes a first line of the response body,
//	        then passes the request on: the upstream's body follows it
//	early-buffered
//	        the same with buffer_response
//
// Anything else passes the request on untouched.
package main

import (
	"bytes"
	"encoding/json"

	"github.com/altair-gateway/altair/examples/plugins/wasm/internal/abi"
)

func init() {
	abi.HandleRequest = handleRequest
}

type view struct {
	Method     string              `json:"method"`
	URI        string              `json:"uri"`
	Protocol   string              `json:"protocol"`
	SourceAddr string              `json:"source_addr"`
	Headers    map[string][]string `json:"headers"`
}

func handleRequest() (bool, uint32) {
	switch abi.Header(abi.HeaderRequest, "X-Inspect") {
	case "answer":
		v := view{
			Method:     abi.Method(),
			URI:        abi.URI(),
			Protocol:   abi.ProtocolVersion(),
			SourceAddr: abi.SourceAddr(),
			Headers:    map[string][]string{},
		}
		for _, name := range abi.HeaderNames(abi.HeaderRequest) {
			v.Headers[name] = abi.HeaderValues(abi.HeaderRequest, name)
		}
		body, _ := json.Marshal(v)
		abi.SetHeader(abi.HeaderResponse, "Content-Type", "application/json")
		abi.WriteBody(abi.BodyResponse, body)
		return false, 0 // status left at its default, 200
	case "early-buffered":
		abi.EnableFeatures(abi.FeatureBufferResponse)
		fallthrough
	case "early":
		abi.SetStatusCode(203)
		abi.WriteBody(abi.BodyResponse, []byte("from the guest\n"))
	case "upper":
		body, _ := abi.ReadBody(abi.BodyRequest, 1<<20)
		abi.WriteBody(abi.BodyRequest, bytes.ToUpper(body))
		abi.AddHeader(abi.HeaderRequest, "X-Inspected", "1")
		abi.AddHeader(abi.HeaderRequest, "X-Inspected", "2")
		if abi.LogEnabled(abi.LogDebug) {
			abi.Log(abi.LogDebug, "inspect: upper-cased the body")
		}
	}
	return true, 0
}

func main() {}
