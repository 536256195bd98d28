package observe

import (
	"context"
	"log/slog"
	"sync"
)

// Levels holds the log level of every subsystem: the default level, and
// overrides for some subsystems (log.levels). Apply changes them all at
// once, for a reload; loggers already handed out follow.
type Levels struct {
	mu        sync.Mutex
	def       slog.Level
	overrides map[string]slog.Level
	vars      map[string]*slog.LevelVar // one per subsystem, "" for the root
}

// NewLevels returns Levels at def with no overrides.
func NewLevels(def slog.Level) *Levels {
	return &Levels{def: def, vars: map[string]*slog.LevelVar{}}
}

// Apply sets the default level and the overrides (subsystem name → level).
func (l *Levels) Apply(def slog.Level, overrides map[string]slog.Level) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.def, l.overrides = def, overrides
	for name, v := range l.vars {
		v.Set(l.levelLocked(name))
	}
}

// For returns the level variable of a subsystem ("" for lines that name
// none).
func (l *Levels) For(subsystem string) *slog.LevelVar {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.vars[subsystem]
	if !ok {
		v = new(slog.LevelVar)
		v.Set(l.levelLocked(subsystem))
		l.vars[subsystem] = v
	}
	return v
}

func (l *Levels) levelLocked(subsystem string) slog.Level {
	if lv, ok := l.overrides[subsystem]; ok {
		return lv
	}
	return l.def
}

// levelHandler filters records by its subsystem's level; the handler it
// wraps accepts everything.
type levelHandler struct {
	inner  slog.Handler
	levels *Levels
	lv     *slog.LevelVar
}

func (h *levelHandler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= h.lv.Level()
}

func (h *levelHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.inner.Handle(ctx, r)
}

func (h *levelHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &levelHandler{inner: h.inner.WithAttrs(attrs), levels: h.levels, lv: h.lv}
}

func (h *levelHandler) WithGroup(name string) slog.Handler {
	return &levelHandler{inner: h.inner.WithGroup(name), levels: h.levels, lv: h.lv}
}

// ParseLevels turns log.level and log.levels into what Apply takes; an
// unparsable level (validation reports it) counts as info.
func ParseLevels(def string, overrides map[string]string) (slog.Level, map[string]slog.Level) {
	d, _ := ParseLevel(def)
	m := make(map[string]slog.Level, len(overrides))
	for name, s := range overrides {
		lv, _ := ParseLevel(s)
		m[name] = lv
	}
	return d, m
}
