// Command altair-custom is Altair with a compiled-in plugin: the whole
// altair command line, plus the "stamp" plugin routes can list.
//
//	go build -o altair-custom ./examples/plugins/go
//	./altair-custom run -c examples/plugins/go/altair.yaml
package main

import (
	"github.com/altair-gateway/altair/examples/plugins/go/stamp"
	"github.com/altair-gateway/altair/plugin"
)

func main() {
	plugin.Main(stamp.Factory())
}
