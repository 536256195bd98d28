package config

import (
	"strings"
	"testing"
)

// route is a valid route for snippets to extend.
const route = `
routes:
  - name: r
    backends: [{url: "http://backend:8080"}]
`

func TestLoadProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		yaml   string
		path   string // want Problem.Path
		marker string // want Problem.Line: the first line containing marker ("" for 0)
		msg    string // want a substring of Problem.Msg
	}{
		// server and log
		{"listen without port", "server:\n  listen: nohost\n", "server.listen", "listen:", "invalid listen address"},
		{"listen bad port", "server:\n  listen: \":70000\"\n", "server.listen", "listen:", `invalid port "70000"`},
		{"listen bad host", "server:\n  listen: \"bad host:80\"\n", "server.listen", "listen:", "invalid host"},
		{"negative duration", "server:\n  idle_timeout: -5s\n", "server.idle_timeout", "idle_timeout", "must not be negative"},
		{"negative max_header_bytes", "server:\n  max_header_bytes: -1\n", "server.max_header_bytes", "max_header_bytes", "must not be negative"},
		{"trusted proxy", "server:\n  trusted_proxies: [10.0.0.0/8, 10.0.0.0/33]\n", "server.trusted_proxies[1]", "trusted_proxies", `invalid CIDR or IP "10.0.0.0/33"`},
		{"log level", "log:\n  level: verbose\n", "log.level", "level:", `invalid value "verbose"`},
		{"log format", "log:\n  format: xml\n", "log.format", "format:", `want one of "json", "text"`},
		{"monitor on_admin without token", "monitor:\n  on_admin: true\n", "monitor.on_admin", "on_admin:", "needs admin.token"},
		{"metrics path is the monitor's", "metrics:\n  path: /monitor\n", "metrics.path", "path:", "is the monitor's"},
		{"access log sample", "log:\n  access:\n    sample: 1.5\n", "log.access.sample", "sample:", "between 0 and 1"},
		{"tracing protocol", "tracing:\n  protocol: thrift\n", "tracing.protocol", "protocol:", `invalid value "thrift"`},
		{"tracing endpoint", "tracing:\n  endpoint: collector:4317\n", "tracing.endpoint", "endpoint:", "invalid OTLP endpoint"},
		{"tracing ratio", "tracing:\n  sample_ratio: 3\n", "tracing.sample_ratio", "sample_ratio:", "between 0 and 1"},
		{"log levels subsystem", "log:\n  levels:\n    proxy: debug\n    proxxy: debug\n", "log.levels.proxxy", "proxxy:", `unknown subsystem "proxxy"`},
		{"log levels level", "log:\n  levels:\n    circuit: loud\n", "log.levels.circuit", "circuit:", `invalid value "loud"`},
		{"access log sample negative", "log:\n  access:\n    sample: -0.1\n", "log.access.sample", "sample:", "between 0 and 1"},

		// defaults and upstreams
		{"load balancing", "defaults:\n  load_balancing: random\n", "defaults.load_balancing", "load_balancing", `invalid value "random"`},
		{"negative route timeout default", "defaults:\n  timeout: -1s\n", "defaults.timeout", "timeout:", "must not be negative"},
		{"panic threshold", "defaults:\n  panic_threshold: 1.5\n", "defaults.panic_threshold", "panic_threshold", "between 0 and 1"},
		{"panic threshold NaN", "defaults:\n  panic_threshold: .nan\n", "defaults.panic_threshold", "panic_threshold", "between 0 and 1"},
		{"retry budget", "defaults:\n  retry:\n    budget: 2\n", "defaults.retry.budget", "budget", "between 0 and 1"},
		{"retry on_status", "defaults:\n  retry:\n    on_status:\n      - 503\n      - 99\n", "defaults.retry.on_status[1]", "- 99", "between 100 and 599"},
		{"negative attempts", "defaults:\n  retry:\n    attempts: -1\n", "defaults.retry.attempts", "attempts", "must not be negative"},
		{"negative per_try_timeout", "defaults:\n  retry:\n    per_try_timeout: -100ms\n", "defaults.retry.per_try_timeout", "per_try_timeout", "must not be negative"},
		{
			"negative per_try_timeout on an upstream",
			"upstreams:\n  u:\n    backends: [{url: http://u}]\n    retry:\n      per_try_timeout: -1s\n",
			"upstreams.u.retry.per_try_timeout", "per_try_timeout", "must not be negative",
		},
		{"health check type", "defaults:\n  health_check:\n    type: udp\n", "defaults.health_check.type", "type:", `invalid value "udp"`},
		{"http health check without path", "defaults:\n  health_check:\n    type: http\n", "defaults.health_check.path", "health_check:", "needs a path"},
		{"health check path", "defaults:\n  health_check:\n    path: healthz\n", "defaults.health_check.path", "path:", "must start with /"},
		{"expected status", "defaults:\n  health_check:\n    expected_status: 700\n", "defaults.health_check.expected_status", "expected_status", "between 100 and 599"},
		{"health timeout above interval", "defaults:\n  health_check:\n    interval: 1s\n    timeout: 5s\n", "defaults.health_check.timeout", "timeout: 5s", "must not exceed"},
		{
			"max ejected share on an upstream",
			"upstreams:\n  u:\n    backends: [{url: http://u}]\n    passive_health:\n      max_ejected_share: -0.1\n",
			"upstreams.u.passive_health.max_ejected_share", "max_ejected_share", "between 0 and 1",
		},
		{"upstream without backends", "upstreams:\n  empty: {}\n", "upstreams.empty.backends", "empty:", "no backends"},
		{"upstream with empty backends", "upstreams:\n  u:\n    backends: []\n", "upstreams.u.backends", "backends:", "no backends"},
		{"null upstream", "upstreams:\n  u:\n", "upstreams.u.backends", "u:", "no backends"},
		{"upstream name", "upstreams:\n  Users:\n    backends: [{url: http://u}]\n", "upstreams.Users", "Users:", "must match"},
		{
			"negative weight",
			"upstreams:\n  u:\n    backends:\n      - url: http://u\n        weight: -1\n",
			"upstreams.u.backends[0].weight", "weight:", "must not be negative",
		},

		// backend URLs
		{"url scheme", "routes:\n  - name: r\n    backends:\n      - url: ftp://x\n", "routes[0].backends[0].url", "ftp://", "scheme must be http or https"},
		{"url without scheme", "routes:\n  - name: r\n    backends:\n      - url: backend:8080\n", "routes[0].backends[0].url", "url:", "scheme must be http or https"},
		{"url without host", "routes:\n  - name: r\n    backends:\n      - url: http:///x\n", "routes[0].backends[0].url", "url:", "must have a host"},
		{"url with query", "routes:\n  - name: r\n    backends:\n      - url: http://x/?a=1\n", "routes[0].backends[0].url", "url:", "must not have a query"},
		{"url with fragment", "routes:\n  - name: r\n    backends:\n      - url: http://x/#f\n", "routes[0].backends[0].url", "url:", "must not have a fragment"},
		{"url with userinfo", "routes:\n  - name: r\n    backends:\n      - url: http://u:secret@x/\n", "routes[0].backends[0].url", "url:", "must not contain user information"},
		{"url unparsable", "routes:\n  - name: r\n    backends:\n      - url: \"http://[::1\"\n", "routes[0].backends[0].url", "url:", "invalid URL"},
		{"url missing", "routes:\n  - name: r\n    backends:\n      - weight: 2\n", "routes[0].backends[0].url", "weight: 2", "url is required"},
		{"url bad port", "routes:\n  - name: r\n    backends:\n      - url: http://x:99999\n", "routes[0].backends[0].url", "url:", `invalid port "99999"`},

		// routes
		{"route name required", "routes:\n  - backends: [{url: http://x}]\n", "routes[0].name", "- backends", "name is required"},
		{"route name syntax", "routes:\n  - name: Users\n    backends: [{url: http://x}]\n", "routes[0].name", "name: Users", "must match"},
		{"route name reserved", "routes:\n  - name: none\n    backends: [{url: http://x}]\n", "routes[0].name", "name: none", "is reserved"},
		{
			"route name unique",
			route + "  - match: {prefix: /b}\n    name: r\n    backends: [{url: http://x}]\n",
			"routes[1].name", "    name: r", `"r" is already used by routes[0]`,
		},
		{"unknown upstream", "routes:\n  - name: r\n    upstream: nope\n", "routes[0].upstream", "upstream:", `unknown upstream "nope"`},
		{
			"upstream and backends",
			"upstreams:\n  u:\n    backends: [{url: http://u}]\nroutes:\n  - name: r\n    upstream: u\n    backends: [{url: http://x}]\n",
			"routes[0].upstream", "upstream: u", "mutually exclusive",
		},
		{"neither upstream nor backends", "routes:\n  - name: r\n", "routes[0]", "- name: r", "needs an upstream or backends"},
		{
			"inline backends named like an upstream",
			"upstreams:\n  r:\n    backends: [{url: http://u}]\nroutes:\n  - name: r\n    backends: [{url: http://x}]\n",
			"routes[0].name", "- name: r", `upstream "r" already exists`,
		},
		{"negative route timeout", route + "    timeout: -1s\n", "routes[0].timeout", "timeout:", "must not be negative"},
		{
			"prefix and path",
			"routes:\n  - name: r\n    match:\n      prefix: /a\n      path: /a/b\n    backends: [{url: http://x}]\n",
			"routes[0].match.path", "path: /a/b", "mutually exclusive",
		},
		{"prefix without slash", route + "    match: {prefix: api}\n", "routes[0].match.prefix", "match:", "must start with /"},
		{"prefix with braces", route + "    match: {prefix: \"/a/{id}\"}\n", "routes[0].match.prefix", "match:", "use match.path"},
		{"path without slash", route + "    match: {path: api}\n", "routes[0].match.path", "match:", "must start with /"},
		{"path with query", route + "    match: {path: \"/a?b\"}\n", "routes[0].match.path", "match:", "must not contain ? or #"},
		{"param not a whole segment", route + "    match:\n      path: /users/x{id}\n", "routes[0].match.path", "path:", "must be a whole segment"},
		{"catch-all not last", route + "    match:\n      path: /a/{rest...}/b\n", "routes[0].match.path", "path:", "{rest...} must be the last segment"},
		{"param name", route + "    match:\n      path: /a/{1x}\n", "routes[0].match.path", "path:", `"1x" must be an identifier`},
		{"empty param name", route + "    match:\n      path: /a/{}\n", "routes[0].match.path", "path:", `"" must be an identifier`},
		{"duplicate param", route + "    match:\n      path: /a/{id}/b/{id}\n", "routes[0].match.path", "path:", `duplicate parameter name "id"`},
		{"reserved param path", route + "    match:\n      path: /a/{path}\n", "routes[0].match.path", "path:", `"path" is reserved`},
		{"reserved param suffix", route + "    match:\n      path: /a/{suffix...}\n", "routes[0].match.path", "path:", `"suffix" is reserved`},
		{"rewrite unknown param", route + "    match:\n      path: /a/{id}\n    rewrite: /b/{nope}\n", "routes[0].rewrite", "rewrite:", "{nope}, which is not a parameter"},
		{"rewrite suffix on path route", route + "    match:\n      path: /a/{id}\n    rewrite: /b{suffix}\n", "routes[0].rewrite", "rewrite:", "{suffix} needs match.prefix"},
		{"rewrite param on prefix route", route + "    match:\n      prefix: /a\n    rewrite: /b/{id}\n", "routes[0].rewrite", "rewrite:", "{id}"},
		{"rewrite unterminated", route + "    rewrite: /b/{path\n", "routes[0].rewrite", "rewrite:", "unterminated {"},
		{"rewrite relative", route + "    rewrite: b/c\n", "routes[0].rewrite", "rewrite:", "must start with /"},
		{"strip_prefix without prefix", route + "    strip_prefix: true\n", "routes[0].strip_prefix", "strip_prefix", "requires match.prefix"},
		{"strip_prefix and rewrite", route + "    match: {prefix: /a}\n    strip_prefix: true\n    rewrite: /b{suffix}\n", "routes[0].rewrite", "rewrite:", "mutually exclusive"},
		{"method", route + "    match:\n      methods: [GET, \"GE T\"]\n", "routes[0].match.methods[1]", "methods:", `invalid method "GE T"`},
		{"host", route + "    match:\n      hosts:\n        - ok.example.com\n        - bad_host\n", "routes[0].match.hosts[1]", "bad_host", `invalid host "bad_host"`},
		{"host wildcard alone", route + "    match:\n      hosts: [\"*\"]\n", "routes[0].match.hosts[0]", "hosts:", `invalid host "*"`},
		{"host wildcard inside", route + "    match:\n      hosts: [\"a.*.com\"]\n", "routes[0].match.hosts[0]", "hosts:", "invalid host"},
		{"host with port", route + "    match:\n      hosts: [\"a.com:80\"]\n", "routes[0].match.hosts[0]", "hosts:", "invalid host"},
		{"match header name", route + "    match:\n      headers:\n        \"Bad Header\": x\n", "routes[0].match.headers.Bad Header", "Bad Header", "invalid header name"},
		{"set header name", route + "    request_headers:\n      set:\n        \"X(y)\": x\n", "routes[0].request_headers.set.X(y)", "X(y)", "invalid header name"},
		{"add header value", route + "    response_headers:\n      add:\n        X-A: \"a\\r\\nB: c\"\n", "routes[0].response_headers.add.X-A", "X-A", "control characters"},
		{"remove header name", route + "    response_headers:\n      remove: [ok, \"no way\"]\n", "routes[0].response_headers.remove[1]", "remove:", `invalid header name "no way"`},
		{"negative max_body_bytes on a route", route + "    max_body_bytes: -1\n", "routes[0].max_body_bytes", "max_body_bytes", "must not be negative"},
		{"negative websocket max_connections", route + "    websocket:\n      max_connections: -1\n", "routes[0].websocket.max_connections", "max_connections", "must not be negative"},
		{"negative websocket idle_timeout", route + "    websocket:\n      idle_timeout: -1s\n", "routes[0].websocket.idle_timeout", "idle_timeout", "must not be negative"},

		// server limits and admin
		{"negative max_uri_bytes", "server:\n  max_uri_bytes: -1\n", "server.max_uri_bytes", "max_uri_bytes", "must not be negative"},
		{"negative max_body_bytes", "server:\n  max_body_bytes: -1\n", "server.max_body_bytes", "max_body_bytes", "must not be negative"},
		{"admin listen", "admin:\n  listen: nohost\n", "admin.listen", "listen:", "invalid listen address"},
		{"admin listen same as server", "server:\n  listen: :9000\nadmin:\n  listen: \"9000\"\n", "admin.listen", "listen: \"9000\"", "must differ from server.listen (:9000)"},
		{"admin listen same as default server", "admin:\n  listen: 127.0.0.1:9777\n", "admin.listen", "listen:", "must differ from server.listen (:9777)"},
		{"admin listen behind wildcard", "server:\n  listen: 127.0.0.1:9000\nadmin:\n  listen: 0.0.0.0:9000\n", "admin.listen", "listen: 0.0.0.0", "must differ"},
		{"admin token", "admin:\n  token: short\n", "admin.token", "token:", "token is too short to be a secret: want at least 16 characters"},

		// edge
		{"allow entry", "edge:\n  allow: [10.0.0.0/8, nope]\n", "edge.allow[1]", "allow:", `invalid CIDR or IP "nope"`},
		{"deny entry", "edge:\n  deny:\n    - 1.2.3.4\n    - 1.2.3.0/40\n", "edge.deny[1]", "1.2.3.0/40", `invalid CIDR or IP "1.2.3.0/40"`},
		{"ddos threshold", "edge:\n  ddos:\n    threshold: -1\n", "edge.ddos.threshold", "threshold", "must be at least 1"},
		{"ddos block_duration", "edge:\n  ddos:\n    block_duration: -1m\n", "edge.ddos.block_duration", "block_duration", "must be greater than 0"},
		{"rate limit rps", "edge:\n  rate_limit:\n    requests_per_second: -1\n", "edge.rate_limit.requests_per_second", "requests_per_second", "must be a number greater than 0"},
		{"rate limit rps NaN", "edge:\n  rate_limit:\n    requests_per_second: .nan\n", "edge.rate_limit.requests_per_second", "requests_per_second", "must be a number greater than 0"},
		{"rate limit rps Inf", "edge:\n  rate_limit:\n    requests_per_second: .inf\n", "edge.rate_limit.requests_per_second", "requests_per_second", "must be a number greater than 0"},
		{"rate limit burst", "edge:\n  rate_limit:\n    burst: -2\n", "edge.rate_limit.burst", "burst", "must be at least 1, got -2"},
		{"rate limit key", "edge:\n  rate_limit:\n    key: user\n", "edge.rate_limit.key", "key:", `invalid key "user"`},
		{"rate limit header key", "edge:\n  rate_limit:\n    key: \"header:X Client\"\n", "edge.rate_limit.key", "key:", `invalid header name "X Client"`},
		{"rate limit empty header key", "edge:\n  rate_limit:\n    key: \"header:\"\n", "edge.rate_limit.key", "key:", `invalid header name ""`},
		{"route rate limit rps", route + "    rate_limit:\n      requests_per_second: -0.5\n", "routes[0].rate_limit.requests_per_second", "requests_per_second", "must be a number greater than 0"},
		{"route rate limit burst", route + "    rate_limit:\n      burst: -1\n", "routes[0].rate_limit.burst", "burst", "must be at least 1"},
		{"route rate limit key", route + "    rate_limit:\n      key: cookie\n", "routes[0].rate_limit.key", "key:", `invalid key "cookie"`},
		{"connections", "edge:\n  connections:\n    max_connections: 10\n    max_in_flight_per_ip: -1\n", "edge.connections.max_in_flight_per_ip", "max_in_flight_per_ip", "must not be negative"},
		{"connections per ip", "edge:\n  connections:\n    max_connections_per_ip: -1\n", "edge.connections.max_connections_per_ip", "max_connections_per_ip", "must not be negative"},

		// security headers
		{"security header value", "security_headers:\n  frame_options: \"DENY\\r\\nX: y\"\n", "security_headers.frame_options", "frame_options", "control characters"},
		{"route security header value", route + "    security_headers:\n      referrer_policy: \"a\\nb\"\n", "routes[0].security_headers.referrer_policy", "referrer_policy", "control characters"},

		// cors
		{"cors origin path", "cors:\n  allowed_origins: [\"https://a.example.com/\"]\n", "cors.allowed_origins[0]", "allowed_origins", "an origin has no path"},
		{"cors origin scheme", "cors:\n  allowed_origins:\n    - https://a.example.com\n    - ftp://a.example.com\n", "cors.allowed_origins[1]", "ftp://", "scheme must be http or https"},
		{"cors origin without scheme", "cors:\n  allowed_origins: [a.example.com]\n", "cors.allowed_origins[0]", "allowed_origins", `invalid origin "a.example.com"`},
		{"cors origin null", "cors:\n  allowed_origins: [\"null\"]\n", "cors.allowed_origins[0]", "allowed_origins", `invalid origin "null"`},
		{"cors origin port", "cors:\n  allowed_origins: [\"http://a:99999\"]\n", "cors.allowed_origins[0]", "allowed_origins", `invalid port "99999"`},
		{"cors origin wildcard inside", "cors:\n  allowed_origins: [\"https://a.*.example.com\"]\n", "cors.allowed_origins[0]", "allowed_origins", "invalid origin"},
		{"cors method", "cors:\n  allowed_methods: [GET, \"P OST\"]\n", "cors.allowed_methods[1]", "allowed_methods", `invalid method "P OST"`},
		{"cors allowed header", "cors:\n  allowed_headers: [\"X:Y\"]\n", "cors.allowed_headers[0]", "allowed_headers", `invalid header name "X:Y"`},
		{"cors exposed header", "cors:\n  exposed_headers: [\"\"]\n", "cors.exposed_headers[0]", "exposed_headers", `invalid header name ""`},
		{"cors max_age", "cors:\n  max_age: -1s\n", "cors.max_age", "max_age", "must not be negative"},
		{"cors credentials with default origin", "cors:\n  allow_credentials: true\n", "cors.allow_credentials", "allow_credentials", `allow_credentials cannot be used with the origin "*"`},
		{
			"cors credentials with origin",
			"cors:\n  allowed_origins: [\"https://a.example.com\", \"*\"]\n  allow_credentials: true\n",
			"cors.allow_credentials", "allow_credentials", `allow_credentials cannot be used with the origin "*"`,
		},
		{"route cors origin", route + "    cors:\n      allowed_origins: [\"https://a.example.com/x\"]\n", "routes[0].cors.allowed_origins[0]", "allowed_origins", "an origin has no path"},
		{"route cors max_age", route + "    cors:\n      max_age: -5m\n", "routes[0].cors.max_age", "max_age", "must not be negative"},
		{
			"route cors credentials inheriting origin",
			route + "    cors:\n      allow_credentials: true\n",
			"routes[0].cors.allow_credentials", "allow_credentials", `allow_credentials cannot be used with the origin "*" (inherited from cors.allowed_origins)`,
		},
		{
			"route cors credentials and own origin",
			"cors:\n  allowed_origins: [\"https://a.example.com\"]\n" + route + "    cors:\n      allowed_origins: [\"*\"]\n      allow_credentials: true\n",
			"routes[0].cors.allow_credentials", "      allow_credentials", `allow_credentials cannot be used with the origin "*"`,
		},
		{
			"route cors origin inheriting credentials",
			"cors:\n  allowed_origins: [\"https://a.example.com\"]\n  allow_credentials: true\n" + route + "    cors:\n      allowed_origins: [\"*\"]\n",
			"routes[0].cors.allowed_origins", "      allowed_origins", `the origin "*" cannot be used with allow_credentials (inherited from cors.allow_credentials)`,
		},

		// auth
		{"public path", "auth:\n  public_paths: [/health, metrics]\n", "auth.public_paths[1]", "public_paths", `path "metrics" must start with /`},
		{"jwt secret", "auth:\n  jwt:\n    secret: too-short\n", "auth.jwt.secret", "secret:", "JWT_SECRET must be at least 32 bytes"},
		{"jwt secret algorithm", "auth:\n  jwt:\n    secret_algorithms: [HS256, RS256]\n", "auth.jwt.secret_algorithms[1]", "secret_algorithms", `invalid value "RS256": want one of "HS256", "HS384", "HS512"`},
		{
			"jwt secret without algorithms",
			"auth:\n  jwt:\n    secret: 0123456789abcdef0123456789abcdef\n    secret_algorithms: []\n",
			"auth.jwt.secret_algorithms", "secret_algorithms", "verifies no token",
		},
		{"jwt key file", "auth:\n  jwt:\n    keys:\n      - algorithm: ES256\n", "auth.jwt.keys[0].file", "algorithm: ES256", "file is required"},
		{"jwt key algorithm", "auth:\n  jwt:\n    keys:\n      - file: k.pem\n        algorithm: HS256\n", "auth.jwt.keys[0].algorithm", "algorithm:", `invalid value "HS256"`},
		{"jwt key algorithm missing", "auth:\n  jwt:\n    keys:\n      - file: k.pem\n", "auth.jwt.keys[0].algorithm", "file: k.pem", "algorithm is required"},
		{"jwks url", "auth:\n  jwt:\n    jwks_url: ftp://idp/jwks\n", "auth.jwt.jwks_url", "jwks_url", "scheme must be http or https"},
		{"jwks url without host", "auth:\n  jwt:\n    jwks_url: \"https:///jwks\"\n", "auth.jwt.jwks_url", "jwks_url", "must have a host"},
		{"jwks refresh", "auth:\n  jwt:\n    jwks_refresh: -1m\n", "auth.jwt.jwks_refresh", "jwks_refresh", "must not be negative"},
		{"leeway negative", "auth:\n  jwt:\n    leeway: -1s\n", "auth.jwt.leeway", "leeway", "must not be negative"},
		{"leeway too large", "auth:\n  jwt:\n    leeway: 6m\n", "auth.jwt.leeway", "leeway", "must be at most 5m0s"},
		{"claim header name", "auth:\n  jwt:\n    claim_headers:\n      sub: \"X User\"\n", "auth.jwt.claim_headers.sub", "sub:", `invalid header name "X User"`},
		{"claim header reserved", "auth:\n  jwt:\n    claim_headers:\n      sub: authorization\n", "auth.jwt.claim_headers.sub", "sub:", `header "authorization" cannot carry a claim`},
		{"claim header api key", "auth:\n  jwt:\n    claim_headers:\n      role: X-Api-Key\n", "auth.jwt.claim_headers.role", "role:", `header "X-Api-Key" cannot carry a claim`},
		{
			"claim header configured api key header",
			"auth:\n  api_keys:\n    header: X-Key\n  jwt:\n    claim_headers:\n      sub: x-key\n",
			"auth.jwt.claim_headers.sub", "sub:", `header "x-key" cannot carry a claim`,
		},
		{"api key header", "auth:\n  api_keys:\n    header: \"X Key\"\n", "auth.api_keys.header", "header:", `invalid header name "X Key"`},
		{"api key name required", "auth:\n  api_keys:\n    keys:\n      - key: 0123456789abcdef\n", "auth.api_keys.keys[0].name", "- key:", "name is required"},
		{"api key name syntax", "auth:\n  api_keys:\n    keys:\n      - name: \"a b\"\n        key: 0123456789abcdef\n", "auth.api_keys.keys[0].name", "name:", `name "a b" must match [A-Za-z0-9_.-]+`},
		{
			"api key name unique",
			"auth:\n  api_keys:\n    keys:\n      - {name: a, key: 0123456789abcdef}\n      - {name: a, key: fedcba9876543210}\n",
			"auth.api_keys.keys[1].name", "fedcba", `name "a" is already used by auth.api_keys.keys[0]`,
		},
		{"api key too short", "auth:\n  api_keys:\n    keys:\n      - name: a\n        key: short\n", "auth.api_keys.keys[0].key", "key: short", "key is too short to be a secret: want at least 16 characters"},
		{"api key and sha256", "auth:\n  api_keys:\n    keys:\n      - name: a\n        key: 0123456789abcdef\n        sha256: ab\n", "auth.api_keys.keys[0].sha256", "sha256", "mutually exclusive"},
		{"api key neither", "auth:\n  api_keys:\n    keys:\n      - name: a\n", "auth.api_keys.keys[0]", "- name: a", "key or sha256 is required"},
		{"api key sha256", "auth:\n  api_keys:\n    keys:\n      - name: a\n        sha256: abcd\n", "auth.api_keys.keys[0].sha256", "sha256", "sha256 must be 64 hex characters"},
		{
			"api key sha256 not hex",
			"auth:\n  api_keys:\n    keys:\n      - name: a\n        sha256: " + strings.Repeat("g", 64) + "\n",
			"auth.api_keys.keys[0].sha256", "sha256", "sha256 must be 64 hex characters",
		},

		// route auth
		{"require_auth without methods", route + "    require_auth: true\n", "routes[0].require_auth", "require_auth", "require_auth needs an authentication method: configure auth.jwt, auth.api_keys or this route's auth.forward"},
		{"auth method name", route + "    auth:\n      methods: [jwt, basic]\n", "routes[0].auth.methods[1]", "methods:", `invalid value "basic": want one of "jwt", "api_key", "forward"`},
		{
			"auth method jwt not configured",
			"auth:\n  api_keys:\n    file: keys.txt\n" + route + "    require_auth: true\n    auth:\n      methods: [api_key, jwt]\n",
			"routes[0].auth.methods[1]", "methods:", "auth method jwt is not configured (set auth.jwt.secret, keys or jwks_url)",
		},
		{
			"auth method api_key not configured",
			"auth:\n  jwt:\n    jwks_url: https://idp/jwks\n" + route + "    require_auth: true\n    auth:\n      methods: [api_key]\n",
			"routes[0].auth.methods[0]", "methods:", "auth method api_key is not configured",
		},
		{
			"auth method forward not configured",
			"auth:\n  jwt:\n    keys: [{file: k.pem, algorithm: EdDSA}]\n" + route + "    require_auth: true\n    auth:\n      methods: [jwt, forward]\n",
			"routes[0].auth.methods[1]", "methods:", "auth method forward is not configured (set this route's auth.forward.url)",
		},
		{"forward url", route + "    auth:\n      forward:\n        url: auth:9000\n", "routes[0].auth.forward.url", "url: auth", "scheme must be http or https"},
		{"forward timeout", route + "    auth:\n      forward:\n        url: http://auth\n        timeout: -1s\n", "routes[0].auth.forward.timeout", "timeout: -1s", "must not be negative"},
		{"forward timeout too long", route + "    auth:\n      forward:\n        url: http://auth\n        timeout: 1m\n", "routes[0].auth.forward.timeout", "timeout: 1m", "at most 10s"},
		{"forward copy header", route + "    auth:\n      forward:\n        copy_headers: [\"X(Y)\"]\n", "routes[0].auth.forward.copy_headers[0]", "copy_headers", `invalid header name "X(Y)"`},
		{
			"duplicate match",
			"routes:\n  - name: a\n    match: {prefix: /x, methods: [get, post], hosts: [A.com]}\n    backends: [{url: http://x}]\n" +
				"  - name: b\n    match: {prefix: /x, methods: [POST, GET], hosts: [a.com]}\n    backends: [{url: http://y}]\n",
			"routes[1].match", "methods: [POST, GET]", `routes "a" (routes[0]) and "b" have the same match`,
		},
		{
			"duplicate catch-all",
			"routes:\n  - name: a\n    backends: [{url: http://x}]\n  - name: b\n    backends: [{url: http://y}]\n",
			"routes[1].match", "- name: b", `routes "a" (routes[0]) and "b"`,
		},

		// decoding
		{"unknown key", route + "    tiemout: 5s\n", "routes[0].tiemout", "tiemout", `unknown key "tiemout"`},
		{"unknown top-level key", "sever:\n  listen: :80\n", "sever", "sever", `unknown key "sever"`},
		{"unknown inline key", "defaults:\n  retries: 3\n", "defaults.retries", "retries", `unknown key "retries"`},
		{"duration without unit", route + "    timeout: 30\n", "routes[0].timeout", "timeout: 30", `invalid duration "30": want a number with a unit`},
		{"bad duration", "server:\n  idle_timeout: soon\n", "server.idle_timeout", "idle_timeout", `invalid value "soon": want a duration`},
		{"weight not an integer", "routes:\n  - name: r\n    backends:\n      - url: http://x\n        weight: abc\n", "routes[0].backends[0].weight", "weight: abc", `invalid value "abc": want an integer`},
		{"weight in flow mapping", "routes:\n  - name: r\n    backends: [{url: http://x, weight: abcdefghijklmnop}]\n", "routes[0].backends[0].weight", "backends:", `invalid value "abcdefghijklmnop"`},
		{"list for a string", "server:\n  listen:\n    - a\n", "server.listen", "- a", "got a list, want a string"},
		{"scalar for a list", "routes: yes\n", "routes", "routes:", "want a list"},
		{"bool", route + "    strip_prefix: maybe\n", "routes[0].strip_prefix", "strip_prefix", "want true or false"},
		{"duplicate key", "log:\n  level: info\n  level: debug\n", "log.level", "level: debug", `duplicate key "level" (first at line 2)`},
		{"unset variable", "log:\n  level: ${NOT_SET_ANYWHERE}\n", "log.level", "level:", "environment variable NOT_SET_ANYWHERE is not set"},
		{"syntax error", "log:\n  level: [info\n", "", "", "did not find expected"},
		{"two documents", "log: {level: info}\n---\nlog: {level: debug}\n", "", "---", "more than one YAML document"},
		{"not a mapping", "- a\n- b\n", "", "- a", "got a list, want a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := loadText(t, tt.yaml)
			if c != nil {
				t.Errorf("Load() config = %+v, want nil", c)
			}
			ps := problemsOf(t, err)
			wantLine := 0
			if tt.marker != "" {
				wantLine = lineOf(t, tt.yaml, tt.marker)
			}
			for _, p := range ps {
				if p.Path == tt.path && strings.Contains(p.Msg, tt.msg) {
					if tt.path == "" && tt.marker == "" {
						return // a syntax error's line is the parser's business
					}
					if p.Line != wantLine {
						t.Errorf("Load(%q): %q line = %d, want %d", tt.yaml, p, p.Line, wantLine)
					}
					return
				}
			}
			t.Errorf("Load(%q) problems:\n%v\nwant one at %q with %q", tt.yaml, err, tt.path, tt.msg)
		})
	}
}

func TestLoadAllProblemsAtOnce(t *testing.T) {
	t.Parallel()
	const text = `server:
  listen: nohost
  idel_timeout: 5s
log:
  level: loud
upstreams:
  u:
    backends:
      - url: ftp://x
        weight: -2
routes:
  - name: r
    upstream: nope
    require_auth: true
  - name: s
    match: {prefix: /s}
    timeout: 30
    backends: [{url: http://x}]
`
	_, err := loadText(t, text, "CONNECTION_TIMEOUT=abc")
	ps := problemsOf(t, err)
	want := Problems{
		{"server.listen", 2, `invalid listen address "nohost": want host:port, such as :9777`},
		{"server.idel_timeout", 3, `unknown key "idel_timeout"`},
		{"log.level", 5, `invalid value "loud": want one of "debug", "info", "warn", "error"`},
		{"upstreams.u.backends[0].url", 9, "scheme must be http or https"},
		{"upstreams.u.backends[0].weight", 10, "must not be negative"},
		{"routes[0].upstream", 13, `unknown upstream "nope"`},
		{"routes[0].require_auth", 14, "require_auth needs an authentication method: configure auth.jwt, auth.api_keys or this route's auth.forward"},
		{"routes[1].timeout", 17, `invalid duration "30": want a number with a unit, such as "30s"`},
		{"CONNECTION_TIMEOUT", 0, `invalid duration "abc"`},
	}
	if len(ps) != len(want) {
		t.Fatalf("Load() problems:\n%v\nwant:\n%v", ps, want)
	}
	for i := range want {
		if ps[i] != want[i] {
			t.Errorf("Load() problem %d = %q, want %q", i, ps[i], want[i])
		}
	}
}

func TestValidateDefaultsReportedOnce(t *testing.T) {
	t.Parallel()
	const text = `defaults:
  retry:
    budget: 3
upstreams:
  a:
    backends: [{url: http://a}]
  b:
    backends: [{url: http://b}]
    retry:
      budget: 3
`
	_, err := loadText(t, text)
	ps := problemsOf(t, err)
	var paths []string
	for _, p := range ps {
		paths = append(paths, p.Path)
	}
	want := []string{"defaults.retry.budget", "upstreams.b.retry.budget"}
	if strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Errorf("Load() problem paths = %q, want %q (inherited bad default reported once)", paths, want)
	}
}

func TestValidateProgrammatic(t *testing.T) {
	t.Parallel()
	// A config built in code (no lines, no defaults applied) is valid when its
	// zero values stand for defaults, and its problems have paths but no lines.
	c := &Config{
		Upstreams: map[string]*Upstream{"u": {Backends: []Backend{{URL: "http://u"}}}},
		Routes:    []Route{{Name: "r", Upstream: "u"}},
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() = %v, want nil", err)
	}
	c.Routes = append(c.Routes, Route{Name: "r", Upstream: "u", Match: Match{Prefix: "/x"}})
	err := c.Validate()
	ps := problemsOf(t, err)
	want := Problem{Path: "routes[1].name", Msg: `name "r" is already used by routes[0]`}
	if len(ps) != 1 || ps[0] != want {
		t.Errorf("Validate() = %v, want %v", err, want)
	}
}

func TestLoadValid(t *testing.T) {
	t.Parallel()
	const secret = "0123456789abcdef0123456789abcdef"
	tests := []struct {
		name    string
		yaml    string
		environ []string
	}{
		{"require_auth with jwt secret", "auth:\n  jwt:\n    secret: " + secret + "\n" + route + "    require_auth: true\n", nil},
		{"require_auth with JWT_SECRET", route + "    require_auth: true\n", []string{"JWT_SECRET=" + secret}},
		{"require_auth with jwt keys", "auth:\n  jwt:\n    keys: [{file: k.pem, algorithm: PS384}]\n" + route + "    require_auth: true\n", nil},
		{"require_auth with jwks", "auth:\n  jwt:\n    jwks_url: https://idp/jwks?tenant=a\n" + route + "    require_auth: true\n", nil},
		{"require_auth with api key", "auth:\n  api_keys:\n    keys: [{name: a, key: 0123456789abcdef}]\n" + route + "    require_auth: true\n", nil},
		{"require_auth with API_KEYS", route + "    require_auth: true\n    auth:\n      methods: [api_key]\n", []string{"API_KEYS=0123456789abcdef"}},
		{"require_auth with api key file", "auth:\n  api_keys:\n    file: keys.txt\n" + route + "    require_auth: true\n", nil},
		{"require_auth with forward", route + "    require_auth: true\n    auth:\n      forward: {url: \"https://auth:8443/check\"}\n", nil},
		{"require_auth with forward method", route + "    require_auth: true\n    auth:\n      methods: [forward]\n      forward: {url: \"http://auth\"}\n", nil},
		{"methods without require_auth", route + "    auth:\n      methods: [jwt]\n", nil},
		{
			"SERVICE_ROUTES require_auth with JWT_SECRET", "",
			[]string{"JWT_SECRET=" + secret, `SERVICE_ROUTES=[{"prefix": "/a", "target_url": "http://a", "require_auth": true}]`},
		},
		{"admin on another port", "admin:\n  listen: \"9778\"\n  token: 0123456789abcdef\n", nil},
		{"admin on another host", "server:\n  listen: 10.0.0.1:9000\nadmin:\n  listen: 127.0.0.1:9000\n", nil},
		{"admin and server on port 0", "server:\n  listen: :0\nadmin:\n  listen: :0\n", nil},
		{"origins", "cors:\n  allowed_origins: [\"*\", \"http://localhost:3000\", \"https://*.example.com\", \"http://[::1]:8080\", \"http://127.0.0.1\", \"HTTPS://App.Example.com\"]\n", nil},
		{"cors credentials with listed origins", "cors:\n  allowed_origins: [\"https://a.example.com\"]\n  allow_credentials: true\n", nil},
		{"cors credentials while disabled", "cors:\n  disabled: true\n  allow_credentials: true\n", nil},
		{"route cors credentials with own origins", route + "    cors:\n      allowed_origins: [\"https://a.example.com\"]\n      allow_credentials: true\n", nil},
		{"route cors disabled", "cors:\n  allowed_origins: [\"https://a.example.com\"]\n  allow_credentials: true\n" + route + "    cors:\n      disabled: true\n      allowed_origins: [\"*\"]\n", nil},
		{"route cors narrows origins", "cors:\n  allow_credentials: true\n  allowed_origins: [\"https://a.example.com\"]\n" + route + "    cors:\n      allowed_origins: [\"https://b.example.com\"]\n", nil},
		{"no cors origins", "cors:\n  allowed_origins: []\n  allow_credentials: true\n", nil},
		{"ddos disabled", "edge:\n  ddos:\n    disabled: true\n    threshold: -1\n", nil},
		{"rate limit keys", "edge:\n  rate_limit: {key: \"header:X-Client-ID\"}\n" + route + "    rate_limit: {key: api_key, requests_per_second: 0.5, burst: 1}\n", nil},
		{"security header off", route + "    security_headers:\n      strict_transport_security: \"off\"\n      content_security_policy: \"default-src 'self'\\tframe-ancestors 'none'\"\n", nil},
		{"leeway at most 5m", "auth:\n  jwt:\n    leeway: 5m\n", nil},
		{"no claim headers", "auth:\n  jwt:\n    claim_headers: {}\n", nil},
		{"sha256 upper case", "auth:\n  api_keys:\n    keys:\n      - name: A_b.c-1\n        sha256: " + strings.Repeat("AB", 32) + "\n", nil},
		{"no public paths", "auth:\n  public_paths: []\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mustLoad(t, tt.yaml, tt.environ...)
		})
	}
}

func TestValidateProgrammaticSecurity(t *testing.T) {
	t.Parallel()
	// Before ApplyDefaults, an unset global origin list is the default "*".
	c := &Config{CORS: CORS{AllowCredentials: true}}
	want := Problem{Path: "cors.allow_credentials", Msg: `allow_credentials cannot be used with the origin "*"`}
	if ps := problemsOf(t, c.Validate()); len(ps) != 1 || ps[0] != want {
		t.Errorf("Validate() = %v, want %v", ps, want)
	}

	// Route overrides are zero until the gateway merges them; that is valid.
	c = &Config{
		Upstreams: map[string]*Upstream{"u": {Backends: []Backend{{URL: "http://u"}}}},
		Routes:    []Route{{Name: "r", Upstream: "u", Auth: RouteAuth{Forward: ForwardAuth{URL: "http://auth"}}, RequireAuth: true}},
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() = %v, want nil", err)
	}
}

func TestValidateMetrics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		give    Metrics
		token   string
		wantErr string
	}{
		{name: "default", give: Metrics{Path: "/metrics"}},
		{name: "custom", give: Metrics{Path: "/internal/metrics"}},
		{name: "relative", give: Metrics{Path: "metrics"}, wantErr: `metrics.path: must start with "/"`},
		{name: "unclean", give: Metrics{Path: "/metrics/"}, wantErr: "metrics.path: must be a clean path"},
		{name: "reserved", give: Metrics{Path: "/health"}, wantErr: "metrics.path: /health is reserved"},
		{name: "admin", give: Metrics{Path: "/admin/metrics"}, wantErr: "metrics.path: must not be under /admin"},
		{name: "disabled skips the path", give: Metrics{Path: "x", Disabled: true}},
		{name: "on_admin without token", give: Metrics{Path: "/metrics", OnAdmin: true}, wantErr: "metrics.on_admin: needs admin.token"},
		{name: "on_admin", give: Metrics{Path: "/metrics", OnAdmin: true}, token: "0123456789abcdef-token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			c.Metrics = tt.give
			c.Admin.Token = tt.token
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate(%+v) = %v, want nil", tt.give, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate(%+v) = %v, want %q", tt.give, err, tt.wantErr)
			}
		})
	}
}

func TestValidateMonitor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		give    Monitor
		metrics string
		token   string
		wantErr string
	}{
		{name: "default"},
		{name: "disabled", give: Monitor{Disabled: true}},
		{name: "on_admin with token", give: Monitor{OnAdmin: true}, token: "0123456789abcdef-token"},
		{name: "on_admin without token", give: Monitor{OnAdmin: true}, wantErr: "monitor.on_admin: needs admin.token"},
		{name: "on_admin while disabled", give: Monitor{OnAdmin: true, Disabled: true}},
		{name: "metrics on the page", metrics: "/monitor", wantErr: "metrics.path: /monitor is the monitor's"},
		{name: "metrics on an asset", metrics: "/monitor/app.js", wantErr: "metrics.path: /monitor/app.js is the monitor's"},
		{name: "metrics on the JSON", metrics: "/api/system-metrics", wantErr: "metrics.path: /api/system-metrics is the monitor's"},
		{name: "metrics on the page, monitor off", give: Monitor{Disabled: true}, metrics: "/monitor"},
		{name: "metrics beside the page", metrics: "/monitoring"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			c.Monitor = tt.give
			c.Admin.Token = tt.token
			if tt.metrics != "" {
				c.Metrics.Path = tt.metrics
			}
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate(%+v) = %v, want nil", tt.give, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate(%+v) = %v, want %q", tt.give, err, tt.wantErr)
			}
		})
	}
}
