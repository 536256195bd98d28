// Package wasmhost runs run-time plugins compiled to WebAssembly, sandboxed
// in wazero, as HTTP middleware. It is the host side of the http-wasm
// handler ABI (https://http-wasm.io/http-handler-abi/), the ABI that Traefik
// and Dapr load, so guests written for it in Go, TinyGo or Rust run
// unchanged.
//
// A Runtime holds one wazero runtime, WASI preview 1 and the "http_handler"
// host module, shared by every plugin. Load compiles a module once and
// checks it; each request borrows an instance from the plugin's pool, which
// serves one request at a time. An instance that trapped or ran past its
// deadline is closed, never reused: the failing request gets a 500 and the
// next one a fresh instance.
//
// The sandbox: no filesystem, no environment, no arguments, no network
// (WASI preview 1 has none); stdout and stderr go to the plugin's logger at
// Info; clocks are real and random numbers come from crypto/rand. Each
// instance's linear memory is capped (Options.MemoryLimitPages) and every
// guest call has a deadline (Options.Timeout).
package wasmhost

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Defaults for the zero values of Options.
const (
	// DefaultMemoryLimitPages is 1024 pages of 64 KiB, 64 MiB: a Go
	// (wasip1) guest starts near 2 MiB and its runtime grows its heap in
	// 4 MiB arenas, so 16 MiB leaves too little room for a guest that
	// reads a body. The memory is allocated as the guest grows it, not up
	// front.
	DefaultMemoryLimitPages = 1024
	// DefaultTimeout bounds each guest call (handle_request, handle_response,
	// and _initialize when an instance is made). It does not include the
	// time spent in the next handler.
	DefaultTimeout = time.Second
	// DefaultMaxInstances bounds the instances of one plugin alive at once
	// (busy or idle). A request holds its instance until handle_response
	// returns, through the upstream's answer (a whole SSE stream), so this
	// is the plugin's concurrency; at about 3 MiB per Go guest it bounds
	// memory near 3 GiB.
	DefaultMaxInstances = 1024
	// DefaultMaxBodyBytes is the most the host buffers of one body for a
	// guest: a request body read with buffer_request, a response body
	// buffered with buffer_response, or a body the guest writes.
	DefaultMaxBodyBytes = 1 << 20
)

// maxPages is the WebAssembly 1.0 limit of a 32-bit memory: 4 GiB.
const maxPages = 65536

// ErrInvalidModule is wrapped by Load's errors when the module is not valid
// WebAssembly or does not implement the http-wasm guest ABI.
var ErrInvalidModule = errors.New("invalid http-wasm module")

// ErrBodyTooLarge is the reason a request is answered 413 when a guest reads
// (with buffer_request) a request body larger than Options.MaxBodyBytes.
var ErrBodyTooLarge = errors.New("body larger than the plugin's limit")

// Observer is told about every request a plugin handled: d is the time spent
// in guest calls (not in the next handler), failed is true when the guest
// trapped, ran past its deadline, or the host could not run it.
type Observer interface {
	Observe(plugin string, d time.Duration, failed bool)
}

// Options configure one plugin.
type Options struct {
	// Name identifies the plugin in logs and metrics.
	Name string
	// Module is the WebAssembly binary (.wasm).
	Module []byte
	// Config is what the guest reads with get_config.
	Config []byte
	// MemoryLimitPages caps each instance's linear memory, in 64 KiB pages.
	// Default DefaultMemoryLimitPages (64 MiB); at most 65536.
	MemoryLimitPages uint32
	// Timeout is the deadline of each guest call. Default DefaultTimeout (1s).
	Timeout time.Duration
	// PoolSize is how many idle instances are kept when the load drops.
	// Under load every instance made is kept for reuse (an instance serves
	// one request from handle_request to handle_response, the upstream's
	// answer included, so concurrent requests need as many); instances
	// that stayed idle for a whole TrimInterval beyond PoolSize are
	// closed. Default GOMAXPROCS.
	PoolSize int
	// TrimInterval is how often idle instances beyond PoolSize are
	// closed. Default DefaultTrimInterval (30s).
	TrimInterval time.Duration
	// MaxInstances is the most instances alive at once; a request that
	// finds them all busy is answered 503 plugin_busy at once rather than
	// queued. Default DefaultMaxInstances (1024).
	MaxInstances int
	// MaxBodyBytes caps every body the host buffers for the guest. Default
	// DefaultMaxBodyBytes (1 MiB).
	MaxBodyBytes int
	// Log receives the guest's log calls, its stdout and stderr (Info), and
	// one warning per failed request. Default: discarded.
	Log *slog.Logger
	// Observer, when set, is told about every request.
	Observer Observer
}

// Runtime is one wazero runtime (compiled to native code where wazero
// supports it, interpreted elsewhere) with WASI preview 1 and the
// http_handler host module, shared by every plugin loaded through it.
type Runtime struct {
	rt    wazero.Runtime
	cache wazero.CompilationCache
	// host and wasi list the functions a guest may import, by name.
	host, wasi map[string]api.FunctionDefinition
}

// NewRuntime makes a Runtime. Close it to release every plugin's memory.
func NewRuntime(ctx context.Context) *Runtime {
	cache := wazero.NewCompilationCache() // a reloaded plugin is not compiled again
	cfg := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(true). // deadlines interrupt guest loops
		WithCompilationCache(cache)
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	// Both are fixed definitions: failing to instantiate them is a bug.
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		panic(fmt.Sprintf("wasmhost: instantiate %s: %v", wasi_snapshot_preview1.ModuleName, err))
	}
	host, err := instantiateHostModule(ctx, rt)
	if err != nil {
		panic(fmt.Sprintf("wasmhost: instantiate %s: %v", hostModule, err))
	}
	return &Runtime{
		rt:    rt,
		cache: cache,
		host:  host.ExportedFunctionDefinitions(),
		wasi:  rt.Module(wasi_snapshot_preview1.ModuleName).ExportedFunctionDefinitions(),
	}
}

// Close closes every instance of every plugin and the runtime.
func (r *Runtime) Close(ctx context.Context) error {
	err := r.rt.Close(ctx)
	return errors.Join(err, r.cache.Close(ctx))
}

// Plugin is a compiled guest and its pool of instances.
type Plugin struct {
	name     string
	rt       *Runtime
	compiled wazero.CompiledModule
	modCfg   wazero.ModuleConfig
	config   []byte
	memLimit uint64 // bytes
	timeout  time.Duration
	maxBody  int
	maxLive  int64
	live     atomic.Int64 // instances made and not yet closed
	log      *slog.Logger
	logRate  logLimiter // guest log records, all instances together
	obs      Observer

	// mu guards closed against release: an instance released after Close
	// is closed rather than pooled.
	mu     sync.RWMutex
	closed bool
	pool   chan *instance // idle instances; room for all of them
	keep   int            // PoolSize
	// lowWater is the fewest idle instances seen since the last trim: that
	// many stayed idle the whole interval.
	lowWater atomic.Int64
	stopTrim chan struct{}
	trimDone chan struct{}
}

// minStartTimeout is the least time a guest's start function (_initialize
// or _start) gets, whatever Options.Timeout says.
const minStartTimeout = 10 * time.Second

// DefaultTrimInterval is how often a plugin closes, by default, the idle
// instances it did not need over the last interval, beyond PoolSize.
const DefaultTrimInterval = 30 * time.Second

// trim closes, every interval until Close, the instances that stayed idle
// the whole interval, keeping p.keep.
func (p *Plugin) trim(every time.Duration) {
	defer close(p.trimDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.stopTrim:
			return
		case <-t.C:
		}
		excess := int(p.lowWater.Swap(int64(len(p.pool)))) - p.keep
		for ; excess > 0; excess-- {
			select {
			case inst := <-p.pool:
				inst.close()
			default:
				excess = 0
			}
		}
		p.lowWater.Store(int64(len(p.pool)))
	}
}

// noteIdle records n idle instances left after a request took one.
func (p *Plugin) noteIdle(n int64) {
	for {
		cur := p.lowWater.Load()
		if n >= cur || p.lowWater.CompareAndSwap(cur, n) {
			return
		}
	}
}

// Load compiles o.Module once, checks that it implements the guest side of
// the ABI and imports nothing the host lacks, and makes one instance (which
// runs the guest's _initialize, or _start) so a broken plugin fails here
// rather than on its first request.
func (r *Runtime) Load(ctx context.Context, o Options) (*Plugin, error) {
	if o.MemoryLimitPages == 0 {
		o.MemoryLimitPages = DefaultMemoryLimitPages
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.PoolSize <= 0 {
		o.PoolSize = runtime.GOMAXPROCS(0)
	}
	if o.MaxInstances <= 0 {
		o.MaxInstances = DefaultMaxInstances
	}
	if o.TrimInterval <= 0 {
		o.TrimInterval = DefaultTrimInterval
	}
	o.PoolSize = min(o.PoolSize, o.MaxInstances)
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("plugin", o.Name)
	if o.MemoryLimitPages > maxPages {
		return nil, fmt.Errorf("load wasm plugin %q: memory limit %d pages is over %d", o.Name, o.MemoryLimitPages, maxPages)
	}
	if len(o.Module) == 0 {
		return nil, fmt.Errorf("load wasm plugin %q: %w: empty module", o.Name, ErrInvalidModule)
	}

	compiled, err := r.rt.CompileModule(ctx, o.Module)
	if err != nil {
		return nil, fmt.Errorf("load wasm plugin %q: %w: %w", o.Name, ErrInvalidModule, err)
	}
	if err := r.check(compiled, o.MemoryLimitPages); err != nil {
		_ = compiled.Close(ctx)
		return nil, fmt.Errorf("load wasm plugin %q: %w: %w", o.Name, ErrInvalidModule, err)
	}

	p := &Plugin{
		name:     o.Name,
		rt:       r,
		compiled: compiled,
		config:   slices.Clone(o.Config),
		memLimit: uint64(o.MemoryLimitPages) * 65536,
		timeout:  o.Timeout,
		maxBody:  o.MaxBodyBytes,
		maxLive:  int64(o.MaxInstances),
		log:      log,
		obs:      o.Observer,
		pool:     make(chan *instance, o.MaxInstances),
		keep:     o.PoolSize,
		logRate:  logLimiter{now: time.Now},
		stopTrim: make(chan struct{}),
		trimDone: make(chan struct{}),
	}
	p.modCfg = wazero.NewModuleConfig().
		WithName(""). // anonymous: many instances of one module
		// A reactor (Go's -buildmode=c-shared, Rust's cdylib) exports
		// _initialize; a command (TinyGo) exports _start and must not exit.
		WithStartFunctions("_initialize", "_start").
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader)

	inst, err := p.newInstance()
	if err != nil {
		_ = compiled.Close(ctx)
		return nil, fmt.Errorf("load wasm plugin %q: %w", o.Name, err)
	}
	p.live.Add(1)
	inst.counted = true
	p.pool <- inst
	p.lowWater.Store(1)
	go p.trim(o.TrimInterval)
	return p, nil
}

var (
	sigHandleRequest  = signature{nil, []api.ValueType{api.ValueTypeI64}}
	sigHandleResponse = signature{[]api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, nil}
)

type signature struct{ params, results []api.ValueType }

func (s signature) matches(d api.FunctionDefinition) bool {
	return slices.Equal(d.ParamTypes(), s.params) && slices.Equal(d.ResultTypes(), s.results)
}

func (s signature) String() string {
	return fmt.Sprintf("(%s) -> (%s)", typeNames(s.params), typeNames(s.results))
}

func typeNames(ts []api.ValueType) string {
	var b bytes.Buffer
	for i, t := range ts {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(api.ValueTypeName(t))
	}
	return b.String()
}

// check verifies the guest's exports and imports, so a module that cannot
// work is refused with a message that says why.
func (r *Runtime) check(m wazero.CompiledModule, limitPages uint32) error {
	exports := m.ExportedFunctions()
	for _, e := range []struct {
		name string
		sig  signature
	}{{funcHandleRequest, sigHandleRequest}, {funcHandleResponse, sigHandleResponse}} {
		d, ok := exports[e.name]
		if !ok {
			return fmt.Errorf("module does not export function %s", e.name)
		}
		if !e.sig.matches(d) {
			return fmt.Errorf("exported function %s has signature %s, want %s",
				e.name, signature{d.ParamTypes(), d.ResultTypes()}, e.sig)
		}
	}
	mem, ok := m.ExportedMemories()["memory"]
	if !ok {
		return errors.New(`module does not export its memory as "memory"`)
	}
	if len(m.ImportedMemories()) > 0 {
		return errors.New("module imports a memory; it must define its own")
	}
	if mem.Min() > limitPages {
		return fmt.Errorf("module needs %d memory pages at start, over the limit of %d", mem.Min(), limitPages)
	}
	for _, d := range m.ImportedFunctions() {
		mod, name, _ := d.Import()
		var have map[string]api.FunctionDefinition
		switch mod {
		case hostModule:
			have = r.host
		case wasi_snapshot_preview1.ModuleName:
			have = r.wasi
		default:
			return fmt.Errorf("module imports %s.%s; the host provides only %s and %s",
				mod, name, hostModule, wasi_snapshot_preview1.ModuleName)
		}
		h, ok := have[name]
		if !ok {
			return fmt.Errorf("module imports %s.%s, which the host does not provide", mod, name)
		}
		if want := (signature{h.ParamTypes(), h.ResultTypes()}); !want.matches(d) {
			return fmt.Errorf("module imports %s.%s as %s, the host defines %s",
				mod, name, signature{d.ParamTypes(), d.ResultTypes()}, want)
		}
	}
	return nil
}

// Name returns the plugin's name.
func (p *Plugin) Name() string { return p.name }

// Close closes the idle instances and the compiled module; instances in use
// are closed when their request ends.
func (p *Plugin) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.stopTrim)
	for {
		select {
		case inst := <-p.pool:
			inst.close()
			continue
		default:
		}
		break
	}
	p.mu.Unlock()
	<-p.trimDone
	return p.compiled.Close(ctx)
}

// ErrClosed is the reason a request through a closed plugin fails.
var ErrClosed = errors.New("wasm plugin closed")

// ErrBusy is the reason a request is answered 503: the plugin has
// Options.MaxInstances instances, all busy.
var ErrBusy = errors.New("wasm plugin has no free instance")

// acquire takes an idle instance or makes one.
func (p *Plugin) acquire() (*instance, error) {
	select {
	case inst := <-p.pool:
		p.noteIdle(int64(len(p.pool)))
		return inst, nil
	default:
	}
	p.noteIdle(0)
	p.mu.RLock()
	closed := p.closed
	p.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	if p.live.Add(1) > p.maxLive {
		p.live.Add(-1)
		return nil, ErrBusy
	}
	inst, err := p.newInstance()
	if err != nil {
		p.live.Add(-1)
		return nil, err
	}
	inst.counted = true
	return inst, nil
}

// release pools a healthy instance, or closes it when the pool is full or
// the plugin closed.
func (p *Plugin) release(inst *instance) {
	p.mu.RLock()
	if !p.closed && !inst.dead {
		select {
		case p.pool <- inst:
			p.mu.RUnlock()
			return
		default:
		}
	}
	p.mu.RUnlock()
	inst.close()
}

// logWriter sends an instance's stdout or stderr to the plugin's logger,
// a record a line (a Go guest's runtime writes a panic's trace in many
// small pieces), within the request's log budget. A line longer than
// maxLogBytes is cut; a partial line is sent when the request ends.
type logWriter struct {
	inst   *instance
	stream string
	line   []byte
	cut    bool // the rest of this line is dropped
}

func (w *logWriter) Write(b []byte) (int, error) {
	n := len(b)
	if !w.inst.p.log.Enabled(context.Background(), slog.LevelInfo) {
		return n, nil
	}
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		chunk := b
		if i >= 0 {
			chunk = b[:i]
		}
		if !w.cut {
			room := maxLogBytes - len(w.line)
			w.line = append(w.line, chunk[:min(len(chunk), room)]...)
			if len(chunk) > room {
				w.flush()
				w.cut = true
			}
		}
		if i < 0 {
			break
		}
		w.flush()
		w.cut = false
		b = b[i+1:]
	}
	return n, nil
}

// flush logs the pending line, if any.
func (w *logWriter) flush() {
	if len(w.line) == 0 {
		return
	}
	if w.inst.allowLog() {
		w.inst.p.log.LogAttrs(w.inst.logContext(), slog.LevelInfo, "wasm plugin output",
			slog.String("stream", w.stream), slog.String("text", string(w.line)))
	}
	w.line = w.line[:0]
}

// limitedMemory backs a guest's linear memory and refuses to grow it past
// the plugin's limit: memory.grow then returns -1 to the guest, whose
// allocator fails (a Go guest exits with "out of memory").
type limitedMemory struct {
	buf   []byte
	limit uint64
}

func (m *limitedMemory) Reallocate(size uint64) []byte {
	if size > m.limit {
		return nil
	}
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size] // the bytes past len were never handed out: still zero
		return m.buf
	}
	c := min(max(size, uint64(cap(m.buf))*3/2), m.limit) // amortise the copies, modestly
	b := make([]byte, size, c)
	copy(b, m.buf)
	m.buf = b
	return b
}

func (m *limitedMemory) Free() { m.buf = nil }

type memoryAllocator struct{ limit uint64 }

func (a memoryAllocator) Allocate(capacity, _ uint64) experimental.LinearMemory {
	return &limitedMemory{buf: make([]byte, 0, min(capacity, a.limit)), limit: a.limit}
}

// newInstance instantiates the module, running its start function under the
// plugin's deadline.
func (p *Plugin) newInstance() (*instance, error) {
	inst := &instance{p: p, stack: make([]uint64, 2)}
	inst.stdout = logWriter{inst: inst, stream: "stdout"}
	inst.stderr = logWriter{inst: inst, stream: "stderr"}
	inst.base = context.WithValue(context.Background(), instanceKey{}, inst)
	inst.deadline.init(inst.base)
	ctx := experimental.WithMemoryAllocator(inst.base, memoryAllocator{limit: p.memLimit})
	// The start function runs the same code for every instance, and Load
	// ran it once already; its deadline only guards against a guest that
	// never returns, so it is generous: a machine under load (many
	// instances made at once, each starting a Go runtime) must not fail
	// requests here.
	ctx, cancel := context.WithTimeout(ctx, max(p.timeout, minStartTimeout))
	defer cancel()
	cfg := p.modCfg.WithStdout(&inst.stdout).WithStderr(&inst.stderr)
	mod, err := p.rt.rt.InstantiateModule(ctx, p.compiled, cfg)
	inst.stdout.flush()
	inst.stderr.flush()
	if err != nil {
		inst.deadline.timer.Stop()
		return nil, fmt.Errorf("instantiate: %w", err)
	}
	if mod.IsClosed() {
		inst.deadline.timer.Stop()
		return nil, errors.New("instantiate: the module exited in its start function; build it as a reactor (Go: -buildmode=c-shared)")
	}
	inst.mod = mod
	inst.mem = mod.Memory()
	inst.handleRequest = mod.ExportedFunction(funcHandleRequest)
	inst.handleResponse = mod.ExportedFunction(funcHandleResponse)
	return inst, nil
}
