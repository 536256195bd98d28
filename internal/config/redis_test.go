package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadRedis(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		yaml    string
		environ []string
		want    Redis
		mode    string
	}{
		{"none", "", nil, Redis{Timeout: 50 * time.Millisecond, KeyPrefix: "altair:"}, ""},
		{"REDIS_ADDR standalone", "", []string{"REDIS_ADDR=redis:6379"}, Redis{Addrs: []string{"redis:6379"}, Timeout: 50 * time.Millisecond, KeyPrefix: "altair:"}, "standalone"},
		{
			"REDIS_ADDR cluster over file", "redis:\n  addrs: [a:1]\n",
			[]string{"REDIS_ADDR= r1:7000, r2:7000 ,r3:7000"},
			Redis{Addrs: []string{"r1:7000", "r2:7000", "r3:7000"}, Timeout: 50 * time.Millisecond, KeyPrefix: "altair:"}, "cluster",
		},
		{
			"sentinel from env", "",
			[]string{"REDIS_ADDR=s1:26379,s2:26379", "REDIS_MASTER_NAME=mymaster", "REDIS_PASSWORD=pw"},
			Redis{Addrs: []string{"s1:26379", "s2:26379"}, MasterName: "mymaster", Password: "pw", Timeout: 50 * time.Millisecond, KeyPrefix: "altair:"}, "sentinel",
		},
		{
			"file", "redis:\n  addrs: [\"127.0.0.1:6380\"]\n  username: gw\n  password: ${PW}\n  db: 2\n  timeout: 20ms\n  key_prefix: \"edge-eu:\"\n  tls: {enabled: true, ca_file: /ca.pem, server_name: redis.internal}\n",
			[]string{"PW=secret"},
			Redis{
				Addrs: []string{"127.0.0.1:6380"}, Username: "gw", Password: "secret", DB: 2, Timeout: 20 * time.Millisecond, KeyPrefix: "edge-eu:",
				TLS: RedisTLS{Enabled: true, CAFile: "/ca.pem", ServerName: "redis.internal"},
			}, "standalone",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := mustLoad(t, tt.yaml, tt.environ...)
			if !reflect.DeepEqual(c.Redis, tt.want) {
				t.Errorf("Load(%q, %q).Redis = %+v, want %+v", tt.yaml, tt.environ, c.Redis, tt.want)
			}
			if got := c.Redis.Mode(); got != tt.mode {
				t.Errorf("Load(%q, %q).Redis.Mode() = %q, want %q", tt.yaml, tt.environ, got, tt.mode)
			}
		})
	}
}

func TestLoadRedisProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		yaml   string
		env    string
		path   string
		marker string
		msg    string
	}{
		{"no port", "redis:\n  addrs: [redis]\n", "", "redis.addrs[0]", "addrs:", `invalid Redis address "redis"`},
		{"bad port", "redis:\n  addrs: [\"a:1\", \"b:0\"]\n", "", "redis.addrs[1]", "addrs:", `invalid port "0"`},
		{"bad host", "redis:\n  addrs: [\"bad host:6379\"]\n", "", "redis.addrs[0]", "addrs:", "invalid host"},
		{"negative db", "redis:\n  addrs: [\"a:1\"]\n  db: -1\n", "", "redis.db", "db:", "must not be negative"},
		{"db with cluster", "redis:\n  addrs: [\"a:1\", \"b:1\"]\n  db: 3\n", "", "redis.db", "db:", "must be 0 with a Redis Cluster"},
		{"negative timeout", "redis:\n  timeout: -1ms\n", "", "redis.timeout", "timeout:", "must not be negative"},
		{"long timeout", "redis:\n  timeout: 1m\n", "", "redis.timeout", "timeout:", "must be at most 5s"},
		{"prefix with space", "redis:\n  key_prefix: \"a b\"\n", "", "redis.key_prefix", "key_prefix:", "white space"},
		{"master name alone", "redis:\n  master_name: m\n", "", "redis.master_name", "master_name:", "needs the Sentinel addresses"},
		{"tls keys without enabled", "redis:\n  tls:\n    ca_file: /ca.pem\n", "", "redis.tls.enabled", "tls:", "must be true"},
		{"REDIS_ADDR", "", "REDIS_ADDR=a:1,redis", "REDIS_ADDR", "", `invalid Redis address "redis"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var env []string
			if tt.env != "" {
				env = []string{tt.env}
			}
			_, err := loadText(t, tt.yaml, env...)
			wantLine := 0
			if tt.marker != "" {
				wantLine = lineOf(t, tt.yaml, tt.marker)
			}
			for _, p := range problemsOf(t, err) {
				if p.Path == tt.path && strings.Contains(p.Msg, tt.msg) {
					if p.Line != wantLine {
						t.Errorf("Load(%q): %q line = %d, want %d", tt.yaml, p, p.Line, wantLine)
					}
					return
				}
			}
			t.Errorf("Load(%q, %q) problems:\n%v\nwant one at %q with %q", tt.yaml, tt.env, err, tt.path, tt.msg)
		})
	}
}
