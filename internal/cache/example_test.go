package cache_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/altair-gateway/altair/internal/cache"
)

// A route's chain with the cache, as the gateway builds it: the
// credentials partition recorded before auth (which strips credentials),
// compression outside the cache (which stores what the origin sent), the
// cache right in front of the proxy step.
func ExampleCache_Handler() {
	c, err := cache.New(cache.Options{DefaultTTL: 5 * time.Minute})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	var proxy http.Handler = http.NotFoundHandler()        // the route's proxy step
	auth := func(h http.Handler) http.Handler { return h } // the route's auth step
	compress := func(h http.Handler) http.Handler { return h }

	strict := time.Duration(0)
	h := c.Handler(cache.RouteOptions{Name: "users", TTL: &strict}, proxy)
	h = compress(h)
	h = auth(h)
	h = cache.CaptureCredentials("X-API-Key")(h)
	_ = h

	// The admin API purges a resource, or everything below a path.
	n, err := c.PurgePrefix(context.Background(), "api.example.com", "/users")
	fmt.Println(n, err)
	// Output: 0 <nil>
}
