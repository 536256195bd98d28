// Package cluster connects the gateway to the Redis that its replicas share
// state through (rate limits, DDoS counters and blocks, allow and deny lists,
// the response cache) and keeps track of whether that Redis can be used.
//
// A Client wraps go-redis's universal client: one address is a standalone
// server, several a Redis Cluster, and with a master name they are Sentinels.
// Its health is one flag, Up. Any failed command marks it down (logged once,
// with the redis_up gauge at 0); while it is down, callers on the request path
// do not try Redis at all and use their local state. A background ping every
// second notices when Redis answers again, marks it up ("redis back") and runs
// the resync functions that users registered, so shared state is loaded
// again.
//
// Changes are announced on one pub/sub channel (KeyPrefix + "events"). A
// message is "topic origin payload"; Handle registers the function that
// receives a topic's messages, in the order Redis delivered them, one at a
// time, never concurrently with a resync.
package cluster

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/altair-gateway/altair/internal/config"
)

// Operations, the op label of redis_errors_total.
const (
	OpPing      = "ping"      // the background health ping
	OpRateLimit = "ratelimit" // a rate-limit decision
	OpDDoS      = "ddos"      // DDoS counters and blocks
	OpLists     = "lists"     // allow and deny lists
	OpPubSub    = "pubsub"    // the subscription to change announcements
	OpCache     = "cache"     // the shared response cache tier
)

// Ops lists every op label, so each series exists from the start.
func Ops() []string { return []string{OpPing, OpRateLimit, OpDDoS, OpLists, OpPubSub, OpCache} }

// backgroundTimeout bounds Redis calls off the request path: pings, loads
// and flushes.
const backgroundTimeout = time.Second

// defaultPingEvery is how often the health ping runs.
const defaultPingEvery = time.Second

// health states.
const (
	stateUnknown int32 = iota // before the first answer or failure
	stateUp
	stateDown
)

// Options configure a Client.
type Options struct {
	// Config is the redis section; Config.Addrs must not be empty.
	Config config.Redis
	// Logger receives the health transitions (subsystem cluster). Nil: none.
	Logger *slog.Logger
	// PingEvery is how often the health ping runs. Zero: every second.
	PingEvery time.Duration
}

// Message is one change announcement.
type Message struct {
	// Origin identifies the client that published it.
	Origin string
	// Own reports whether this client published it.
	Own bool
	// Payload is the topic's text.
	Payload string
}

// Client is the gateway's connection to Redis, with its health.
type Client struct {
	rdb       redis.UniversalClient
	cfg       config.Redis
	prefix    string
	timeout   time.Duration
	pingEvery time.Duration
	channel   string
	origin    string
	log       *slog.Logger

	state atomic.Int32

	// errs and fallbacks count by op; the maps are read-only after New.
	errs      map[string]*atomic.Uint64
	fallbacks map[string]*atomic.Uint64

	mu       sync.Mutex // guards handlers and resyncs
	handlers map[string]func(context.Context, Message)
	resyncs  []func(context.Context)
	// syncMu serialises message handling and resyncs, so a resync's load
	// and the messages after it apply in order.
	syncMu sync.Mutex

	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started atomic.Bool
	closed  atomic.Bool
}

// New returns a Client for o.Config. It does not connect: Start does. The
// only errors are in the config itself (an unreadable CA file, no address).
func New(o Options) (*Client, error) {
	cfg := o.Config
	if len(cfg.Addrs) == 0 {
		return nil, errors.New("redis: no address")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 50 * time.Millisecond
	}
	tc, err := TLSConfig(cfg.TLS)
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.PingEvery <= 0 {
		o.PingEvery = defaultPingEvery
	}
	// go-redis logs through a package-level logger of its own (reconnects,
	// failed dials) to stderr; the gateway says what matters itself.
	redis.SetLogger(quiet{})

	dialer := &net.Dialer{Timeout: backgroundTimeout, KeepAlive: 30 * time.Second}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if tc == nil {
			return dialer.DialContext(ctx, network, addr)
		}
		// tls.Dialer, unlike tls.DialWithDialer, honours ctx, so a request
		// never waits on a handshake longer than its timeout.
		return (&tls.Dialer{NetDialer: dialer, Config: tc}).DialContext(ctx, network, addr)
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	c := &Client{
		cfg:       cfg,
		prefix:    cfg.KeyPrefix,
		timeout:   cfg.Timeout,
		pingEvery: o.PingEvery,
		channel:   cfg.KeyPrefix + "events",
		origin:    hex.EncodeToString(id),
		log:       o.Logger,
		errs:      make(map[string]*atomic.Uint64),
		fallbacks: make(map[string]*atomic.Uint64),
		handlers:  make(map[string]func(context.Context, Message)),
	}
	for _, op := range Ops() {
		c.errs[op], c.fallbacks[op] = new(atomic.Uint64), new(atomic.Uint64)
	}
	c.rdb = redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:      cfg.Addrs,
		MasterName: cfg.MasterName,
		Username:   cfg.Username,
		Password:   cfg.Password,
		DB:         cfg.DB,
		TLSConfig:  tc,
		Dialer:     dial,
		ClientName: "altair",
		// RESP2: the gateway needs nothing of RESP3 (push notifications,
		// client-side caching), and go-redis checks a RESP3 connection for
		// pushes before each command: over TLS 1.3 the session tickets
		// Redis sends after the handshake look like one, and the check
		// waits up to 50ms for a push that never comes, so a new
		// connection's first command could outlast the request timeout.
		Protocol: 2,
		// A decision falls back to local state rather than retry: the
		// request must not wait longer than Timeout.
		MaxRetries:    -1,
		DialerRetries: 1,
		DialTimeout:   backgroundTimeout,
		// Request-path calls carry a context with Timeout; background
		// ones a second. The socket deadlines follow the context.
		ContextTimeoutEnabled: true,
		ReadTimeout:           backgroundTimeout,
		WriteTimeout:          backgroundTimeout,
		PoolTimeout:           backgroundTimeout,
		DisableIdentity:       true,
	})
	if cfg.MasterName != "" {
		c.rdb.AddHook(sentinelHook{master: cfg.MasterName})
	}
	return c, nil
}

// sentinelHook makes an unknown master name a failure that says so: go-redis
// reports it from the dial as redis.Nil, which reads as "no such key" and
// which Fail, rightly for commands, ignores, so a wrong master_name went
// unreported and Redis was never marked down.
type sentinelHook struct{ master string }

func (h sentinelHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil && errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("no reachable Sentinel knows master %q", h.master)
		}
		return conn, err
	}
}

func (sentinelHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (sentinelHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TLSConfig returns the TLS settings for t, or nil when TLS is off. It reads
// the CA file, so `altair validate` can report a bad one.
func TLSConfig(t config.RedisTLS) (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // an explicit, documented test-only option
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read redis CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redis CA file %q holds no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// Start connects (waiting at most a second for the first answer, so the
// first requests already share state when Redis is there), then pings every
// second and listens for change announcements until ctx is done or Close.
// Redis being down is not an error: the Client keeps trying.
func (c *Client) Start(ctx context.Context) {
	if c.started.Swap(true) {
		return
	}
	ctx, c.cancel = context.WithCancel(ctx)
	c.ping(ctx)
	c.wg.Go(func() { c.pingLoop(ctx) })
	c.wg.Go(func() { c.subscribeLoop(ctx) })
}

// Close stops the background work and closes the connections.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
	return c.rdb.Close()
}

// Up reports whether Redis answered the last command sent to it. While it is
// down, callers on the request path use their local state without trying
// Redis.
func (c *Client) Up() bool { return c.state.Load() == stateUp }

// Redis returns the underlying go-redis client, for commands of one's own.
// Bound each call with RequestContext (on the request path) or
// BackgroundContext, and report failures with Fail.
func (c *Client) Redis() redis.UniversalClient { return c.rdb }

// ForEachMaster runs fn with a client of each master: the one server of a
// standalone or Sentinel setup, every master of a Redis Cluster (there
// concurrently). It is for commands that see only one node's keys, such as
// SCAN. fn bounds its own calls.
func (c *Client) ForEachMaster(ctx context.Context, fn func(context.Context, *redis.Client) error) error {
	switch r := c.rdb.(type) {
	case *redis.ClusterClient:
		return r.ForEachMaster(ctx, fn)
	case *redis.Client:
		return fn(ctx, r)
	}
	return fmt.Errorf("redis: no masters to visit on a %T", c.rdb)
}

// Prefix is the key prefix (redis.key_prefix).
func (c *Client) Prefix() string { return c.prefix }

// Key returns the prefix followed by parts joined with ":".
func (c *Client) Key(parts ...string) string { return c.prefix + strings.Join(parts, ":") }

// Timeout is the per-command timeout on the request path (redis.timeout).
func (c *Client) Timeout() time.Duration { return c.timeout }

// Mode is "standalone", "sentinel" or "cluster".
func (c *Client) Mode() string { return c.cfg.Mode() }

// RequestContext returns a context for one Redis call on the request path,
// bounded by the timeout.
func (c *Client) RequestContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.timeout)
}

// BackgroundContext returns a context for one Redis call off the request
// path (loads, flushes), bounded by a second.
func (c *Client) BackgroundContext(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, backgroundTimeout)
}

// Fail records a failed Redis call for op: it counts it and marks Redis down
// until the background ping succeeds again. redis.Nil (no such key) is not a
// failure and is ignored, as is nil.
func (c *Client) Fail(op string, err error) {
	if err == nil || errors.Is(err, redis.Nil) {
		return
	}
	if n := c.errs[op]; n != nil {
		n.Add(1)
	}
	for {
		s := c.state.Load()
		if s == stateDown {
			return
		}
		if c.state.CompareAndSwap(s, stateDown) {
			if c.closed.Load() {
				return
			}
			c.log.Warn("redis unreachable: shared state falls back to local", "op", op, "error", err.Error(), "addrs", strings.Join(c.cfg.Addrs, ","))
			return
		}
	}
}

// Fallback counts one decision of op made with local state because Redis
// was down or failed.
func (c *Client) Fallback(op string) {
	if n := c.fallbacks[op]; n != nil {
		n.Add(1)
	}
}

// Stats is a snapshot of the Client's health, for metrics and /stats.
type Stats struct {
	// Up is Up().
	Up bool
	// Errors counts failed calls by op (every op of Ops present).
	Errors map[string]uint64
	// Fallbacks counts decisions made locally by op (every op present).
	Fallbacks map[string]uint64
}

// Stats returns the current health and counts.
func (c *Client) Stats() Stats {
	st := Stats{Up: c.Up(), Errors: make(map[string]uint64, len(c.errs)), Fallbacks: make(map[string]uint64, len(c.fallbacks))}
	for op, n := range c.errs {
		st.Errors[op] = n.Load()
	}
	for op, n := range c.fallbacks {
		st.Fallbacks[op] = n.Load()
	}
	return st
}

// Handle registers fn for topic's messages (a topic is one word). fn runs on
// the subscriber's goroutine, one message at a time; it should bound its own
// Redis calls.
func (c *Client) Handle(topic string, fn func(context.Context, Message)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.handlers[topic] = fn
}

// OnResync registers fn to run whenever shared state must be loaded again:
// on connecting, when Redis comes back, and each time the subscription is
// (re)established (messages may have been missed in between).
func (c *Client) OnResync(fn func(context.Context)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resyncs = append(c.resyncs, fn)
}

// Publish announces payload on topic to every replica, this one included
// (its Message has Own set).
func (c *Client) Publish(ctx context.Context, topic, payload string) error {
	return c.rdb.Publish(ctx, c.channel, c.Announcement(topic, payload)).Err()
}

// Channel is the pub/sub channel announcements go to, for scripts that
// publish themselves (with Announcement's text).
func (c *Client) Channel() string { return c.channel }

// Announcement is the message text that publishes payload on topic.
func (c *Client) Announcement(topic, payload string) string {
	return topic + " " + c.origin + " " + payload
}

func (c *Client) pingLoop(ctx context.Context) {
	t := time.NewTicker(c.pingEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.ping(ctx)
		}
	}
}

// ping asks Redis for PONG. An answer slower than the request timeout does
// not bring Redis back: requests would only time out on it.
func (c *Client) ping(ctx context.Context) {
	pctx, cancel := c.BackgroundContext(ctx)
	start := time.Now()
	err := c.rdb.Ping(pctx).Err()
	cancel()
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		c.Fail(OpPing, err)
		return
	}
	if c.Up() || time.Since(start) > c.timeout {
		return
	}
	prev := c.state.Swap(stateUp)
	if prev == stateUp {
		return
	}
	if prev == stateDown {
		c.log.Warn("redis back: shared state resumes", "addrs", strings.Join(c.cfg.Addrs, ","))
	} else {
		c.log.Info("redis connected: replicas share rate limits, DDoS blocks, lists and the response cache", "addrs", strings.Join(c.cfg.Addrs, ","), "mode", c.Mode())
	}
	c.resync(ctx)
}

// resync runs every registered resync function, in order.
func (c *Client) resync(ctx context.Context) {
	c.mu.Lock()
	fns := slices.Clone(c.resyncs)
	c.mu.Unlock()
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	for _, fn := range fns {
		if ctx.Err() != nil {
			return
		}
		fn(ctx)
	}
}

func (c *Client) subscribeLoop(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.receive(ctx)
		t.Reset(c.pingEvery)
	}
}

// receive subscribes and handles messages until the subscription fails or
// ctx is done. go-redis reconnects a broken subscription by itself when it
// can; each (re)subscription triggers a resync, since messages may have been
// missed in between.
func (c *Client) receive(ctx context.Context) {
	ps := c.rdb.Subscribe(ctx)
	defer ps.Close()
	// A blocked receive ends when the subscription is closed.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	sctx, cancel := c.BackgroundContext(ctx)
	err := ps.Subscribe(sctx, c.channel)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			c.Fail(OpPubSub, err)
		}
		return
	}
	pinged := false
	for {
		m, err := ps.ReceiveTimeout(ctx, c.pingEvery)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !pinged {
				// Quiet channel: make sure the connection is alive.
				pinged = true
				pctx, cancel := c.BackgroundContext(ctx)
				err = ps.Ping(pctx)
				cancel()
				if err == nil {
					continue
				}
			}
			c.Fail(OpPubSub, err)
			return
		}
		pinged = false
		switch m := m.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				c.resync(ctx)
			}
		case *redis.Message:
			c.dispatch(ctx, m.Payload)
		}
	}
}

func (c *Client) dispatch(ctx context.Context, text string) {
	topic, rest, ok := strings.Cut(text, " ")
	if !ok {
		return
	}
	origin, payload, _ := strings.Cut(rest, " ")
	c.mu.Lock()
	fn := c.handlers[topic]
	c.mu.Unlock()
	if fn == nil {
		return
	}
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	fn(ctx, Message{Origin: origin, Own: origin == c.origin, Payload: payload})
}

// quiet is go-redis's logger, silenced.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}
