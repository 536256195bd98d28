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
		{"require_auth", route + "    require_auth: true\n", "routes[0].require_auth", "require_auth", "require_auth needs authentication, which is not configured"},
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
		{"routes[0].require_auth", 14, "require_auth needs authentication, which is not configured"},
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
