package gateway

import (
	"slices"

	"github.com/altair-gateway/altair/internal/compress"
	"github.com/altair-gateway/altair/internal/config"
)

// compressOptions turns a compression section into compress.Options; zero
// fields stay zero (the package's defaults, or inherited by Merge).
func compressOptions(c config.Compression) compress.Options {
	o := compress.Options{Encodings: c.Encodings, MinSize: c.MinSize, GzipLevel: c.Levels.Gzip,
		BrotliLevel: c.Levels.Brotli, ZstdLevel: c.Levels.Zstd, Types: c.Types}
	if len(c.ExtraTypes) > 0 {
		if len(o.Types) == 0 {
			o.Types = compress.DefaultTypes()
		}
		o.Types = append(slices.Clone(o.Types), c.ExtraTypes...)
	}
	return o
}

// overridesCompression reports whether a route's section changes anything
// but Disabled, so that it needs a compressor (and encoder pools) of its own.
func overridesCompression(c config.Compression) bool {
	return len(c.Encodings)+len(c.Types)+len(c.ExtraTypes) > 0 || c.MinSize != 0 || c.Levels != (config.CompressionLevels{})
}

// routeCompressor returns the compressor of route rc: nil when compression
// is off for it, the graph's shared one when the route overrides nothing.
func routeCompressor(cfg *config.Config, rc *config.Route, global *compress.Compressor) (*compress.Compressor, error) {
	if cfg.Compression.Disabled || rc.Compression.Disabled {
		return nil, nil
	}
	if !overridesCompression(rc.Compression) {
		return global, nil
	}
	base := compressOptions(cfg.Compression)
	over := compressOptions(rc.Compression)
	if len(rc.Compression.Types) == 0 && len(rc.Compression.ExtraTypes) > 0 && len(base.Types) > 0 {
		// extra_types on the route adds to the global list, not the defaults.
		over.Types = append(slices.Clone(base.Types), rc.Compression.ExtraTypes...)
	}
	return compress.New(base.Merge(over))
}
