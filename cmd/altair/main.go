// Command altair is the Altair API gateway.
//
//	altair [run] [-c FILE] [-dashboard=false]   start the gateway
//	altair validate -c FILE                     check a config, report every problem
//	altair explain [-c FILE] METHOD URL [-H 'Name: value']... [-json]
//	                                            show how a request would be handled
//	altair health [-c FILE] [-url URL] [-ready] ask a running gateway; exit 0 if healthy
//	altair version                              print the version
//
// The program itself is internal/cli; a binary with compiled-in plugins runs
// the same through the plugin package.
package main

import (
	"os"

	"github.com/altair-gateway/altair/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr, os.Environ(), cli.Options{Version: version}))
}
