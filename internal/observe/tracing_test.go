package observe

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func testTracer(ratio float64) (*Tracer, *tracetest.SpanRecorder) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())))
	return &Tracer{tp: tp, tr: tp.Tracer("test"), ratio: ratio,
		prop: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})}, rec
}

const (
	sampledParent   = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	unsampledParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
)

func TestParentSampled(t *testing.T) {
	for _, tc := range []struct {
		tp             string
		sampled, valid bool
	}{
		{sampledParent, true, true},
		{unsampledParent, false, true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03", true, true},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", true, true}, // future version, extra fields
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false, false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", false, false},
		{"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false, false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g", false, false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", false, false},
		{"", false, false},
	} {
		s, v := parentSampled(tc.tp)
		if s != tc.sampled || v != tc.valid {
			t.Errorf("parentSampled(%q) = %v, %v; want %v, %v", tc.tp, s, v, tc.sampled, tc.valid)
		}
	}
}

// TestUnsampledCostsNothing: at ratio 0 a request without a traceparent, or
// with an unsampled one, gets no span, keeps its request and its headers,
// and its attempts inject nothing; a sampled parent is always followed.
func TestUnsampledCostsNothing(t *testing.T) {
	tr, rec := testTracer(0)
	for _, parent := range []string{"", unsampledParent} {
		r := httptest.NewRequest("GET", "/x", nil)
		if parent != "" {
			r.Header.Set("Traceparent", parent)
		}
		r2, span := tr.StartRequest(r)
		if span != nil || r2 != r {
			t.Fatalf("parent %q: got a span or a new request", parent)
		}
		out := r.Clone(context.Background())
		ctx, a := tr.StartAttempt(r2.Context(), out, "http://b", 1)
		a.End(&http.Response{StatusCode: 200}, nil)
		tr.EndRequest(span, "route", 200, nil)
		if ctx != r2.Context() || out.Header.Get("Traceparent") != parent {
			t.Fatalf("parent %q: attempt changed the context or traceparent to %q", parent, out.Header.Get("Traceparent"))
		}
		if allocs := testing.AllocsPerRun(100, func() {
			_, s := tr.StartRequest(r)
			_, a := tr.StartAttempt(r.Context(), out, "http://b", 1)
			a.End(nil, nil)
			tr.EndRequest(s, "route", 200, nil)
		}); allocs != 0 {
			t.Errorf("parent %q: %v allocations per unsampled request, want 0", parent, allocs)
		}
	}
	if n := len(rec.Ended()); n != 0 {
		t.Fatalf("%d spans recorded for unsampled requests", n)
	}

	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("Traceparent", sampledParent)
	r2, span := tr.StartRequest(r)
	if span == nil {
		t.Fatal("a sampled parent was not followed at ratio 0")
	}
	out := r.Clone(context.Background())
	_, a := tr.StartAttempt(r2.Context(), out, "http://b", 1)
	a.End(&http.Response{StatusCode: 502}, nil)
	tr.EndRequest(span, "route", 502, &Record{User: "alice"})
	if got := out.Header.Get("Traceparent"); !strings.HasPrefix(got, "00-4bf92f3577b34da6a3ce929d0e0e4736-") || got == sampledParent {
		t.Fatalf("attempt traceparent = %q, want the trace with the attempt's span", got)
	}
	if n := len(rec.Ended()); n != 2 {
		t.Fatalf("%d spans recorded, want the request and the attempt", n)
	}
}

func TestRatioDraw(t *testing.T) {
	tr, rec := testTracer(0.5)
	n := 2000
	for range n {
		_, s := tr.StartRequest(httptest.NewRequest("GET", "/", nil))
		tr.EndRequest(s, "r", 200, nil)
	}
	if got := len(rec.Ended()); got < n*4/10 || got > n*6/10 {
		t.Fatalf("ratio 0.5 sampled %d of %d", got, n)
	}
}
