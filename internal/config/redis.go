package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Redis defaults.
const (
	defaultRedisTimeout   = 50 * time.Millisecond
	defaultRedisKeyPrefix = "altair:"
	// maxRedisTimeout keeps a Redis that hangs from holding requests for long:
	// the timeout is what a request may wait on Redis.
	maxRedisTimeout = 5 * time.Second
)

// Environment variables of the redis section.
const (
	envRedisAddr       = "REDIS_ADDR"
	envRedisPassword   = "REDIS_PASSWORD"
	envRedisMasterName = "REDIS_MASTER_NAME"
)

// Redis configures the Redis that replicas share state through: rate
// limits, DDoS counters and blocks, the run-time allow and deny lists, and
// the response cache (cache.store).
// Without addresses there is no Redis and every replica keeps its own state.
// It is read once at start (a reload does not change it).
type Redis struct {
	// Addrs are host:port addresses (REDIS_ADDR, comma-separated). One
	// address is a standalone server, several are the seed nodes of a
	// Redis Cluster, unless MasterName is set: then they are Sentinels.
	// Default: none (no Redis).
	Addrs []string `yaml:"addrs"`
	// MasterName is the Sentinel master name (REDIS_MASTER_NAME); set, Addrs
	// are Sentinel addresses. Default: none.
	MasterName string `yaml:"master_name"`
	// Username for Redis ACLs (Redis 6+). Default: none (the default user).
	Username string `yaml:"username"`
	// Password (REDIS_PASSWORD); write ${REDIS_PASSWORD} rather than the
	// secret itself. Default: none.
	Password string `yaml:"password"`
	// DB is the database number (standalone and Sentinel only; a Cluster has
	// only 0). Default 0.
	DB int `yaml:"db"`
	// TLS configures TLS to Redis.
	TLS RedisTLS `yaml:"tls"`
	// Timeout bounds each Redis command: no request waits longer than this
	// on Redis before the gateway falls back to local state. Default 50ms.
	Timeout time.Duration `yaml:"timeout"`
	// KeyPrefix starts every key and pub/sub channel the gateway uses, so
	// several gateways (or other programs) can share one Redis. Default
	// "altair:".
	KeyPrefix string `yaml:"key_prefix"`
}

// RedisTLS configures TLS to Redis.
type RedisTLS struct {
	// Enabled turns TLS on. Default false.
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM file of the CAs that sign the server's certificate.
	// Default: the system's roots.
	CAFile string `yaml:"ca_file"`
	// ServerName is the name the certificate must carry. Default: the host
	// of the address dialled.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any certificate. For tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Enabled reports whether a Redis is configured.
func (r Redis) Enabled() bool { return len(r.Addrs) > 0 }

// Mode is "standalone", "sentinel" or "cluster" (what Addrs and MasterName
// select), or "" without Redis.
func (r Redis) Mode() string {
	switch {
	case len(r.Addrs) == 0:
		return ""
	case r.MasterName != "":
		return "sentinel"
	case len(r.Addrs) > 1:
		return "cluster"
	}
	return "standalone"
}

func (r *Redis) applyDefaults() {
	setDuration(&r.Timeout, defaultRedisTimeout)
	setString(&r.KeyPrefix, defaultRedisKeyPrefix)
}

// applyRedisEnv applies REDIS_ADDR, REDIS_PASSWORD and REDIS_MASTER_NAME.
func applyRedisEnv(r *Redis, env map[string]string, bad func(string, error)) {
	if v, ok := lookup(env, envRedisAddr); ok {
		var addrs []string
		valid := true
		for a := range strings.SplitSeq(v, ",") {
			a = strings.TrimSpace(a)
			if a == "" {
				continue
			}
			if err := checkRedisAddr(a); err != nil {
				bad(envRedisAddr, err)
				valid = false
			}
			addrs = append(addrs, a)
		}
		if valid {
			r.Addrs = addrs
		}
	}
	if v, ok := lookup(env, envRedisPassword); ok {
		r.Password = v
	}
	if v, ok := lookup(env, envRedisMasterName); ok {
		r.MasterName = v
	}
}

// redis checks the redis section.
func (v *validator) redis() {
	r := &v.c.Redis
	for i, a := range r.Addrs {
		v.check("redis.addrs["+strconv.Itoa(i)+"]", checkRedisAddr(a))
	}
	if r.DB < 0 {
		v.add("redis.db", "must not be negative")
	} else if r.DB != 0 && r.Mode() == "cluster" {
		v.add("redis.db", "must be 0 with a Redis Cluster (several addrs and no master_name)")
	}
	switch {
	case r.Timeout < 0:
		v.add("redis.timeout", "must not be negative")
	case r.Timeout > maxRedisTimeout:
		v.add("redis.timeout", "must be at most %v: requests wait this long on Redis", maxRedisTimeout)
	}
	if strings.ContainsAny(r.KeyPrefix, " \t\r\n") {
		v.add("redis.key_prefix", "must not contain white space")
	}
	if r.MasterName != "" && len(r.Addrs) == 0 {
		v.add("redis.master_name", "needs the Sentinel addresses in redis.addrs")
	}
	if t := &r.TLS; !t.Enabled && (t.CAFile != "" || t.ServerName != "" || t.InsecureSkipVerify) {
		v.add("redis.tls.enabled", "must be true when other redis.tls keys are set")
	}
}

// checkRedisAddr accepts host:port with a port from 1 to 65535.
func checkRedisAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" {
		return fmt.Errorf("invalid Redis address %q: want host:port, such as redis:6379", a)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("invalid port %q in Redis address %q: want 1 to 65535", port, a)
	}
	if _, err := netip.ParseAddr(host); err != nil && !validHostname(strings.ToLower(host)) {
		return fmt.Errorf("invalid host %q in Redis address %q", host, a)
	}
	return nil
}
