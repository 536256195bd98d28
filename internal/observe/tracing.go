package observe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/altair-gateway/altair/internal/config"
)

// SubsystemTracer is the subsystem of the tracer's own log lines.
const SubsystemTracer = "tracer"

// Tracer makes the gateway's spans: one server span per request and one
// client span per upstream attempt, exported over OTLP. A nil *Tracer is
// valid and does nothing, which is what the gateway holds when tracing is off:
// the request path then pays one nil check.
type Tracer struct {
	tp    *sdktrace.TracerProvider
	tr    trace.Tracer
	prop  propagation.TextMapPropagator
	ratio float64 // share of new traces recorded
}

// Span start options, built once: an option is an interface value, and
// building it per call allocates.
var (
	serverKind = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	clientKind = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}
)

// NewTracer returns the tracer cfg asks for, or nil when tracing is off. The
// exporter also honours the OTLP variables that config does not own
// (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _CERTIFICATE, _COMPRESSION, ...)
// and the batch processor OTEL_BSP_*; OTEL_RESOURCE_ATTRIBUTES adds resource
// attributes. Export failures are logged by the tracer subsystem and never
// reach a request.
func NewTracer(ctx context.Context, cfg config.Tracing, version string, log *slog.Logger) (*Tracer, error) {
	if !cfg.Enabled {
		return nil, nil
	}
	var (
		exp sdktrace.SpanExporter
		err error
	)
	url := cfg.URL()
	switch cfg.Protocol {
	case "grpc":
		var opts []otlptracegrpc.Option
		if url != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(url))
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	default:
		var opts []otlptracehttp.Option
		if url != "" {
			opts = append(opts, otlptracehttp.WithEndpointURL(url))
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
		resource.WithAttributes(
			attribute.String("service.name", cfg.ServiceName),
			attribute.String("service.version", version),
		),
	)
	if err != nil && res == nil {
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	// The SDK reports export failures to a process-wide handler; without
	// one they go to stderr in another format. At most one line per 30s.
	var last atomic.Int64
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		now := time.Now().UnixNano()
		if prev := last.Load(); now-prev >= int64(30*time.Second) && last.CompareAndSwap(prev, now) {
			log.Warn("tracing: export failed; spans are dropped until the collector answers", "error", err)
		}
	}))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		// The ratio is applied by StartRequest before any span exists, so
		// that an unsampled request costs nothing; what reaches the SDK is
		// sampled, or the child of a sampled parent.
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
	)
	log.Info("tracing on", "protocol", cfg.Protocol, "endpoint", displayURL(url), "sample_ratio", cfg.Ratio(),
		"service_name", cfg.ServiceName)
	return &Tracer{
		tp:    tp,
		tr:    tp.Tracer("github.com/altair-gateway/altair"),
		prop:  propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		ratio: cfg.Ratio(),
	}, nil
}

func displayURL(u string) string {
	if u == "" {
		return "(exporter default)"
	}
	return u
}

// Shutdown exports the spans still buffered and stops the exporter.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.tp.Shutdown(ctx)
}

// StartRequest starts the server span of r, as a child of the traceparent the
// client sent, if any, and returns r with the span in its context. A request
// that is not traced — it came with an unsampled traceparent, or with none and
// lost the draw against the sample ratio — gets no span (nil) and r back
// unchanged: nothing is allocated, and the client's trace headers, if any,
// reach the backend as they came.
func (t *Tracer) StartRequest(r *http.Request) (*http.Request, trace.Span) {
	if tp := r.Header["Traceparent"]; len(tp) == 1 {
		sampled, valid := parentSampled(tp[0])
		if valid && !sampled {
			return r, nil
		}
		if !valid && !t.draw() {
			return r, nil
		}
	} else if !t.draw() {
		return r, nil
	}
	ctx := t.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := t.tr.Start(ctx, "gateway.request", serverKind...)
	span.SetAttributes(
		attribute.String("http.request.method", r.Method),
		attribute.String("url.path", r.URL.Path),
		attribute.String("server.address", r.Host),
		attribute.String("network.protocol.version", protoVersion(r)),
	)
	return r.WithContext(ctx), span
}

// draw decides whether a request without a usable parent starts a trace.
func (t *Tracer) draw() bool {
	return t.ratio >= 1 || (t.ratio > 0 && rand.Float64() < t.ratio)
}

// parentSampled reads the sampled flag of a W3C traceparent
// ("00-<32 hex>-<16 hex>-<2 hex>"); valid is false when it is not one.
func parentSampled(tp string) (sampled, valid bool) {
	if len(tp) < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' || (len(tp) > 55 && tp[55] != '-') {
		return false, false
	}
	if tp[0] == 'f' && tp[1] == 'f' { // version ff is invalid
		return false, false
	}
	f, ok := unhex(tp[54])
	if _, ok2 := unhex(tp[53]); !ok || !ok2 {
		return false, false
	}
	return f&1 == 1, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// EndRequest ends the server span with what the request came to.
func (t *Tracer) EndRequest(span trace.Span, route string, status int, rec *Record) {
	if span == nil {
		return
	}
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("altair.route", route),
			attribute.Int("http.response.status_code", status),
		)
		if rec != nil {
			if rec.ClientIP.IsValid() {
				span.SetAttributes(attribute.String("client.address", rec.ClientIP.String()))
			}
			if rec.Backend != "" {
				span.SetAttributes(attribute.String("altair.backend", rec.Backend))
			}
			if rec.Attempts > 1 {
				span.SetAttributes(attribute.Int("altair.retries", rec.Attempts-1))
			}
			if rec.User != "" {
				span.SetAttributes(attribute.String("enduser.id", rec.User))
			}
			if rec.Cache != "" {
				span.SetAttributes(attribute.String("altair.cache", rec.Cache))
			}
		}
		if status >= 500 {
			span.SetAttributes(attribute.String("error.type", strconv.Itoa(status)))
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	}
	span.End()
}

// AttemptSpan is the client span of one upstream attempt.
type AttemptSpan struct{ span trace.Span }

// StartAttempt starts the client span of one attempt on backend, a child of
// the request's span in ctx, and writes its traceparent (and the request's
// baggage) into out's headers, so the backend continues the trace.
func (t *Tracer) StartAttempt(ctx context.Context, out *http.Request, backend string, attempt int) (context.Context, AttemptSpan) {
	if !trace.SpanContextFromContext(ctx).IsSampled() {
		return ctx, AttemptSpan{} // the request is not traced
	}
	ctx, span := t.tr.Start(ctx, "upstream.attempt", clientKind...)
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String("http.request.method", out.Method),
			attribute.String("altair.backend", backend),
			attribute.Int("altair.attempt", attempt),
			attribute.String("url.path", out.URL.Path),
		)
	}
	t.prop.Inject(ctx, propagation.HeaderCarrier(out.Header))
	return ctx, AttemptSpan{span}
}

// End ends the attempt's span with its response status or error.
func (a AttemptSpan) End(resp *http.Response, err error) {
	if a.span == nil {
		return
	}
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	if a.span.IsRecording() {
		if status > 0 {
			a.span.SetAttributes(attribute.Int("http.response.status_code", status))
		}
		switch {
		case err != nil:
			a.span.SetAttributes(attribute.String("error.type", errorType(err)))
			a.span.SetStatus(codes.Error, err.Error())
		case status >= 500:
			a.span.SetAttributes(attribute.String("error.type", strconv.Itoa(status)))
			a.span.SetStatus(codes.Error, http.StatusText(status))
		}
	}
	a.span.End()
}

func errorType(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return fmt.Sprintf("%T", errors.Unwrap(err))
}

func protoVersion(r *http.Request) string {
	switch r.ProtoMajor {
	case 2:
		return "2"
	case 3:
		return "3"
	}
	if r.ProtoMinor == 0 {
		return "1.0"
	}
	return "1.1"
}
