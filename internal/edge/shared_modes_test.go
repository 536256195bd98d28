package edge

// The shared limiter and lists through a password-protected, a TLS and a
// Sentinel-watched Redis (real processes, internal/cluster/redistest), and
// the local fallback when the password or the CA is wrong.

import (
	"testing"
	"time"

	"github.com/altair-gateway/altair/internal/cluster"
	"github.com/altair-gateway/altair/internal/cluster/redistest"
	"github.com/altair-gateway/altair/internal/config"
)

func TestSharedThroughAuthTLSAndSentinel(t *testing.T) {
	t.Parallel()
	const secret = "s3cret-pw"
	tests := []struct {
		name  string
		setup func(t *testing.T) config.Redis
	}{
		{"password", func(t *testing.T) config.Redis {
			return config.Redis{Addrs: []string{redistest.StartAuth(t, "", secret).Addr}, Password: secret}
		}},
		{"ACL user", func(t *testing.T) config.Redis {
			return config.Redis{Addrs: []string{redistest.StartAuth(t, "altair", secret).Addr}, Username: "altair", Password: secret}
		}},
		{"TLS", func(t *testing.T) config.Redis {
			ca := redistest.NewCA(t)
			return config.Redis{Addrs: []string{redistest.StartTLS(t, ca).Addr}, TLS: config.RedisTLS{Enabled: true, CAFile: ca.File}}
		}},
		{"Sentinel with password", func(t *testing.T) config.Redis {
			st := redistest.StartSentinel(t, redistest.SentinelOptions{Password: secret})
			return config.Redis{Addrs: st.Addrs(), MasterName: redistest.MasterName, Password: secret}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := tt.setup(t)
			a, b := newReplicaWith(t, cfg, nil, true), newReplicaWith(t, cfg, nil, true)
			if !a.cl.Up() || !b.cl.Up() {
				t.Fatalf("Up() = %v, %v after Start, want both up", a.cl.Up(), b.cl.Up())
			}
			// One limit over both replicas: 12 requests, burst 6.
			allowed := 0
			for i := range 12 {
				r := a
				if i%2 == 1 {
					r = b
				}
				if r.limiter.Allow("k", 0.5, 6).Allowed {
					allowed++
				}
			}
			if allowed != 6 || a.local.Len()+b.local.Len() != 0 {
				t.Fatalf("12 requests over two replicas, burst 6: %d allowed (local keys %d), want 6 from Redis", allowed, a.local.Len()+b.local.Len())
			}
			if err := a.lists.Add(Deny, "203.0.113.0/24"); err != nil {
				t.Fatal(err)
			}
			waitUntil(t, time.Second, "the deny entry on the other replica", func() bool { return b.lists.Denied(mustAddr("203.0.113.7")) })
		})
	}
}

// TestSharedWrongCredentialsFallBack: a wrong password or CA leaves Redis
// down; every decision is the local limiter's, still enforced, and counted.
func TestSharedWrongCredentialsFallBack(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(t *testing.T) config.Redis
	}{
		{"wrong password", func(t *testing.T) config.Redis {
			return config.Redis{Addrs: []string{redistest.StartAuth(t, "", "s3cret-pw").Addr}, Password: "wrong"}
		}},
		{"wrong CA", func(t *testing.T) config.Redis {
			srv := redistest.StartTLS(t, redistest.NewCA(t))
			return config.Redis{Addrs: []string{srv.Addr}, TLS: config.RedisTLS{Enabled: true, CAFile: redistest.NewCA(t).File}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newReplicaWith(t, tt.setup(t), nil, true)
			if r.cl.Up() {
				t.Fatal("Up() = true, want down")
			}
			allowed := 0
			for range 10 {
				if r.limiter.Allow("k", 0.5, 4).Allowed {
					allowed++
				}
			}
			st := r.cl.Stats()
			if allowed != 4 || r.local.Len() != 1 || st.Fallbacks[cluster.OpRateLimit] != 10 || st.Errors[cluster.OpRateLimit] != 0 {
				t.Fatalf("10 decisions at burst 4 with Redis down: %d allowed, local keys %d, stats %+v; want 4 allowed, all 10 local, no Redis call", allowed, r.local.Len(), st)
			}
			if err := r.lists.Add(Deny, "203.0.113.0/24"); err != nil || !r.lists.Denied(mustAddr("203.0.113.1")) {
				t.Fatalf("a deny entry added with Redis down: %v, applies %v; want it to apply locally", err, r.lists.Denied(mustAddr("203.0.113.1")))
			}
			if st.Errors[cluster.OpPing] == 0 {
				t.Fatalf("Stats().Errors = %v, want the failed ping counted", st.Errors)
			}
		})
	}
}
