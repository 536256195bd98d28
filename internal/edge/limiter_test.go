package edge

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestLocalLimiterBurstAndRefill(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	l := NewLocalLimiter(clk.Now)
	const rps, burst = 10, 3 // one token per 100ms
	steps := []struct {
		advance time.Duration
		want    Decision
	}{
		{0, Decision{Allowed: true, Limit: 3, Remaining: 2, Reset: 100 * time.Millisecond}},
		{0, Decision{Allowed: true, Limit: 3, Remaining: 1, Reset: 200 * time.Millisecond}},
		{0, Decision{Allowed: true, Limit: 3, Remaining: 0, Reset: 300 * time.Millisecond}},
		{0, Decision{Allowed: false, Limit: 3, Remaining: 0, Reset: 300 * time.Millisecond, RetryAfter: 100 * time.Millisecond}},
		{60 * time.Millisecond, Decision{Allowed: false, Limit: 3, Remaining: 0, Reset: 240 * time.Millisecond, RetryAfter: 40 * time.Millisecond}},
		{40 * time.Millisecond, Decision{Allowed: true, Limit: 3, Remaining: 0, Reset: 300 * time.Millisecond}},
		{250 * time.Millisecond, Decision{Allowed: true, Limit: 3, Remaining: 1, Reset: 150 * time.Millisecond}},
		{time.Hour, Decision{Allowed: true, Limit: 3, Remaining: 2, Reset: 100 * time.Millisecond}}, // full again, no more
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		if got := l.Allow("k", rps, burst); got != s.want {
			t.Errorf("step %d: Allow(k, %d, %d) = %+v, want %+v", i, rps, burst, got, s.want)
		}
	}
}

func TestLocalLimiterIndependentKeys(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	l := NewLocalLimiter(clk.Now)
	if d := l.Allow("a", 1, 1); !d.Allowed {
		t.Fatalf("Allow(a) #1 = %+v, want allowed", d)
	}
	if d := l.Allow("a", 1, 1); d.Allowed || d.RetryAfter != time.Second {
		t.Errorf("Allow(a) #2 = %+v, want denied, RetryAfter 1s", d)
	}
	if d := l.Allow("b", 1, 1); !d.Allowed {
		t.Errorf("Allow(b) = %+v, want allowed (independent of a)", d)
	}
	if got := l.Len(); got != 2 {
		t.Errorf("Len() = %d, want 2", got)
	}
}

func TestLocalLimiterOddArguments(t *testing.T) {
	t.Parallel()
	l := NewLocalLimiter(nil)
	tests := []struct {
		name  string
		rps   float64
		burst int
		want  Decision
	}{
		{"zero rps is no limit", 0, 5, Decision{Allowed: true, Limit: 5, Remaining: 5}},
		{"negative burst is 1", 1, -3, Decision{Allowed: true, Limit: 1, Remaining: 0, Reset: time.Second}},
	}
	for _, tt := range tests {
		if got := l.Allow("x"+tt.name, tt.rps, tt.burst); got != tt.want {
			t.Errorf("%s: Allow(%v, %d) = %+v, want %+v", tt.name, tt.rps, tt.burst, got, tt.want)
		}
	}
	// A tiny rate must not overflow.
	d := l.Allow("tiny", 1e-12, 1000)
	if !d.Allowed || d.Reset <= 0 {
		t.Errorf("Allow(tiny rate) = %+v, want allowed with a positive Reset", d)
	}
	d = l.Allow("huge", 1e12, 1)
	if !d.Allowed {
		t.Errorf("Allow(huge rate) = %+v, want allowed", d)
	}
}

func TestLocalLimiterEviction(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	l := NewLocalLimiter(clk.Now)
	const n = 5000
	for i := range n {
		l.Allow(fmt.Sprintf("k%d", i), 10, 20) // TAT = now+100ms
	}
	l.Allow("busy", 1, 5)
	l.Allow("busy", 1, 5) // TAT = now+2s
	if got := l.Len(); got != n+1 {
		t.Fatalf("Len() = %d, want %d", got, n+1)
	}
	clk.Advance(50 * time.Millisecond)
	l.sweep()
	if got := l.Len(); got != n+1 {
		t.Errorf("Len() after 50ms = %d, want %d (no TAT passed)", got, n+1)
	}
	clk.Advance(50 * time.Millisecond)
	l.sweep()
	if got := l.Len(); got != 1 {
		t.Errorf("Len() after 100ms = %d, want 1", got)
	}
	// The evicted key comes back full.
	if d := l.Allow("k1", 10, 20); d.Remaining != 19 {
		t.Errorf("Allow(evicted key) Remaining = %d, want 19", d.Remaining)
	}
	clk.Advance(2 * time.Second)
	l.sweep()
	if got := l.Len(); got != 0 {
		t.Errorf("Len() after 2s = %d, want 0", got)
	}
}

func TestLocalLimiterConcurrent(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	l := NewLocalLimiter(clk.Now)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 8 {
		wg.Go(func() {
			n := 0
			for range 1000 {
				if l.Allow("shared", 1, 100).Allowed {
					n++
				}
			}
			mu.Lock()
			allowed += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if allowed != 100 {
		t.Errorf("allowed %d of 8000 concurrent requests on one key, want exactly the burst, 100", allowed)
	}
}

func TestLocalLimiterRunStops(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	l := NewLocalLimiter(clk.Now)
	l.sweepIv = time.Millisecond
	l.Allow("k", 1, 1)
	clk.Advance(time.Hour)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		l.Run(ctx)
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for l.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not evict within 10s")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
}
