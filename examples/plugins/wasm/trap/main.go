//go:build wasip1

// Command trap is a misbehaving plugin for the host's sandbox tests. The
// request header X-Trap chooses how it fails:
//
//	panic           panics in handle_request (the Go runtime exits the module)
//	nil             dereferences a nil pointer
//	loop            loops forever in handle_request
//	grow            allocates memory until the host's limit stops it
//	response-panic  panics in handle_response
//
// Anything else passes the request on.
package main

import "github.com/altair-gateway/altair/examples/plugins/wasm/internal/abi"

var sink [][]byte

type node struct{ next *node }

func init() {
	abi.HandleRequest = handleRequest
	abi.HandleResponse = func(reqCtx uint32, _ bool) {
		if reqCtx == 1 {
			panic("trap: panic in handle_response")
		}
	}
}

func handleRequest() (bool, uint32) {
	switch abi.Header(abi.HeaderRequest, "X-Trap") {
	case "panic":
		panic("trap: panic in handle_request")
	case "nil":
		var n *node
		_ = n.next.next
	case "loop":
		for i := 0; ; i++ {
			if i < 0 {
				break
			}
		}
	case "grow":
		for {
			sink = append(sink, make([]byte, 1<<20))
		}
	case "response-panic":
		return true, 1
	}
	return true, 0
}

func main() {}
