//go:build wasip1

// Command empty is a plugin that does nothing: it passes every request on.
// It measures the cost of the WebAssembly host itself.
package main

import _ "github.com/altair-gateway/altair/examples/plugins/wasm/internal/abi"

func main() {}
