package edge

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/altair-gateway/altair/internal/config"
)

func TestBlockerThresholdAndExpiry(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	b := NewBlocker(clk.Now)
	b.SetConfig(config.DDoS{Threshold: 3, BlockDuration: 10 * time.Minute})
	ip := netip.MustParseAddr("203.0.113.5")
	other := netip.MustParseAddr("203.0.113.6")

	for i := range 3 {
		if blocked, _ := b.Hit(ip); blocked {
			t.Fatalf("Hit #%d = blocked, want allowed (threshold 3)", i+1)
		}
	}
	blocked, ra := b.Hit(ip)
	if !blocked || ra != 10*time.Minute {
		t.Fatalf("Hit #4 = (%v, %v), want (true, 10m0s)", blocked, ra)
	}
	if blocked, _ := b.Hit(other); blocked {
		t.Errorf("Hit(other IP) = blocked, want allowed")
	}
	if got := b.BlocksTotal(); got != 1 {
		t.Errorf("BlocksTotal() = %d, want 1", got)
	}
	want := []BlockedIP{{IP: "203.0.113.5", Until: clk.Now().Add(10 * time.Minute)}}
	if got := b.Blocked(); len(got) != 1 || got[0].IP != want[0].IP || !got[0].Until.Equal(want[0].Until) {
		t.Errorf("Blocked() = %v, want %v", got, want)
	}

	clk.Advance(9*time.Minute + 59*time.Second)
	if blocked, ra := b.Hit(ip); !blocked || ra != time.Second {
		t.Errorf("Hit 1s before the block ends = (%v, %v), want (true, 1s)", blocked, ra)
	}
	clk.Advance(time.Second)
	if blocked, ra := b.Hit(ip); blocked {
		t.Errorf("Hit when the block ends = (%v, %v), want allowed", blocked, ra)
	}
	if got := b.Blocked(); len(got) != 0 {
		t.Errorf("Blocked() after the block ended = %v, want none", got)
	}
	// The IP starts from zero: two more requests pass (three in total).
	for i := range 2 {
		if blocked, _ := b.Hit(ip); blocked {
			t.Errorf("Hit #%d after the block = blocked, want allowed", i+2)
		}
	}
	if blocked, _ := b.Hit(ip); !blocked {
		t.Errorf("Hit #4 after the block = allowed, want blocked")
	}
	if got := b.BlocksTotal(); got != 2 {
		t.Errorf("BlocksTotal() = %d, want 2", got)
	}
}

func TestBlockerSlidingWindow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		first   int           // requests at 0:50
		wait    time.Duration // then wait
		second  int           // requests after the wait, all but the last must pass
		blocked bool          // whether the last of the second batch is blocked
	}{
		// 10 at 0:50, 10 at 1:10: 10×(50/60) + 10 > 10: blocked (a fixed
		// window would have allowed 20 in 20 seconds).
		{name: "burst across the boundary", first: 10, wait: 20 * time.Second, second: 2, blocked: true},
		// 10 at 0:50, at 1:50 the old window weighs 10×(10/60)≈1.67, so 8
		// more pass (9.67) and a 9th is over 10.
		{name: "old window mostly faded, 8 pass", first: 10, wait: time.Minute, second: 8, blocked: false},
		{name: "old window mostly faded, 9th blocked", first: 10, wait: time.Minute, second: 9, blocked: true},
		// At 2:50 the first window no longer counts.
		{name: "two windows later", first: 10, wait: 2 * time.Minute, second: 10, blocked: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := newFakeClock()
			clk.Advance(50 * time.Second)
			b := NewBlocker(clk.Now)
			b.SetConfig(config.DDoS{Threshold: 10, BlockDuration: time.Minute})
			ip := netip.MustParseAddr("2001:db8::1")
			for i := range tt.first {
				if blocked, _ := b.Hit(ip); blocked {
					t.Fatalf("first batch: Hit #%d blocked", i+1)
				}
			}
			clk.Advance(tt.wait)
			for i := range tt.second - 1 {
				if blocked, _ := b.Hit(ip); blocked {
					t.Fatalf("second batch: Hit #%d blocked, want allowed", i+1)
				}
			}
			if blocked, _ := b.Hit(ip); blocked != tt.blocked {
				t.Errorf("second batch: last Hit blocked = %v, want %v", blocked, tt.blocked)
			}
		})
	}
}

func TestBlockerSetConfig(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	b := NewBlocker(clk.Now)
	ip := netip.MustParseAddr("192.0.2.1")
	for range 100 {
		if blocked, _ := b.Hit(ip); blocked {
			t.Fatal("Hit before SetConfig = blocked, want allowed (blocking off)")
		}
	}
	b.SetConfig(config.DDoS{Threshold: 2, BlockDuration: time.Minute})
	b.Hit(ip)
	b.Hit(ip)
	// Raising the threshold keeps the count: 2 so far, 3rd passes with 5.
	b.SetConfig(config.DDoS{Threshold: 5, BlockDuration: time.Minute})
	for i := range 3 {
		if blocked, _ := b.Hit(ip); blocked {
			t.Fatalf("Hit #%d with threshold 5 = blocked", i+3)
		}
	}
	if blocked, _ := b.Hit(ip); !blocked {
		t.Fatalf("Hit #6 with threshold 5 = allowed, want blocked")
	}
	// Disabling turns blocking off, re-enabling finds the block still there.
	b.SetConfig(config.DDoS{Disabled: true, Threshold: 5, BlockDuration: time.Minute})
	if blocked, _ := b.Hit(ip); blocked {
		t.Errorf("Hit while disabled = blocked, want allowed")
	}
	b.SetConfig(config.DDoS{Threshold: 5, BlockDuration: time.Hour})
	if blocked, ra := b.Hit(ip); !blocked || ra != time.Minute {
		t.Errorf("Hit after re-enabling = (%v, %v), want (true, 1m0s): a block keeps its end", blocked, ra)
	}
}

func TestBlockerUnblock(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	b := NewBlocker(clk.Now)
	b.SetConfig(config.DDoS{Threshold: 1, BlockDuration: time.Hour})
	ip := netip.MustParseAddr("::ffff:192.0.2.9")
	b.Hit(ip)
	if blocked, _ := b.Hit(ip); !blocked {
		t.Fatal("Hit #2 with threshold 1 = allowed")
	}
	if got := b.Blocked(); len(got) != 1 || got[0].IP != "192.0.2.9" {
		t.Errorf("Blocked() = %v, want 192.0.2.9 (unmapped)", got)
	}
	if !b.Unblock(netip.MustParseAddr("192.0.2.9")) {
		t.Errorf("Unblock(blocked IP) = false, want true")
	}
	if b.Unblock(ip) {
		t.Errorf("Unblock(no longer blocked) = true, want false")
	}
	if b.Unblock(netip.Addr{}) {
		t.Errorf("Unblock(zero Addr) = true, want false")
	}
	if blocked, _ := b.Hit(ip); blocked {
		t.Errorf("Hit after Unblock = blocked, want allowed")
	}
	if blocked, _ := b.Hit(netip.Addr{}); blocked {
		t.Errorf("Hit(zero Addr) = blocked, want allowed")
	}
}

func TestBlockerSweepBoundsMemory(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	b := NewBlocker(clk.Now)
	b.SetConfig(config.DDoS{Threshold: 1, BlockDuration: 5 * time.Minute})
	const n = 100000 // > numShards × shrinkMin, so shards shrink
	for i := range n {
		b.Hit(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	blockedIP := netip.MustParseAddr("198.51.100.1")
	b.Hit(blockedIP)
	b.Hit(blockedIP)
	if got := b.size(); got != n+1 {
		t.Fatalf("size() = %d, want %d", got, n+1)
	}
	clk.Advance(time.Minute)
	b.sweep()
	if got := b.size(); got != n+1 {
		t.Errorf("size() after 1m = %d, want %d (counts still matter)", got, n+1)
	}
	clk.Advance(time.Minute)
	b.sweep()
	if got := b.size(); got != 1 {
		t.Errorf("size() after 2m = %d, want 1 (only the blocked IP)", got)
	}
	clk.Advance(3 * time.Minute)
	b.sweep()
	if got := b.size(); got != 0 {
		t.Errorf("size() after the block ended = %d, want 0", got)
	}
	for i := range b.shards {
		if p := b.shards[i].peak; p > 1 {
			t.Errorf("shard %d peak = %d after emptying, want <= 1 (map reallocated)", i, p)
			break
		}
	}
}

func TestBlockerRunStops(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	b := NewBlocker(clk.Now)
	b.sweepIv = time.Millisecond
	b.SetConfig(config.DDoS{Threshold: 10, BlockDuration: time.Minute})
	b.Hit(netip.MustParseAddr("192.0.2.1"))
	clk.Advance(3 * time.Minute)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		b.Run(ctx)
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for b.size() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not sweep within 10s")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
}

// TestIPv6BlockedPerSlash64: addresses of one /64 share a DDoS budget, so a
// client cannot escape a block by rotating through its own prefix.
func TestIPv6BlockedPerSlash64(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := NewBlocker(func() time.Time { return now })
	b.SetConfig(config.DDoS{Threshold: 5, BlockDuration: time.Minute})
	blocked := false
	for i := 0; i < 20; i++ {
		a := netip.MustParseAddr(fmt.Sprintf("2001:db8:1:2::%x", i+1))
		if hit, _ := b.Hit(a); hit {
			blocked = true
		}
	}
	if !blocked {
		t.Fatal("20 requests from 20 addresses of one /64 with threshold 5: never blocked")
	}
	if hit, _ := b.Hit(netip.MustParseAddr("2001:db8:1:3::1")); hit {
		t.Fatal("a neighbouring /64 was blocked too")
	}
	if got := Bucket(netip.MustParseAddr("2001:db8:1:2:aaaa:bbbb:cccc:dddd")); got != netip.MustParseAddr("2001:db8:1:2::") {
		t.Fatalf("Bucket(v6) = %v, want 2001:db8:1:2::", got)
	}
	if got := Bucket(netip.MustParseAddr("::ffff:192.0.2.1")); got != netip.MustParseAddr("192.0.2.1") {
		t.Fatalf("Bucket(v4-mapped) = %v, want 192.0.2.1", got)
	}
}
