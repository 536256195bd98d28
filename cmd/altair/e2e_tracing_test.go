package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// otlpSink collects the spans a gateway exports.
type otlpSink struct {
	mu       sync.Mutex
	spans    []*tracepb.Span
	services []string
}

func (s *otlpSink) add(req *coltrace.ExportTraceServiceRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				s.services = append(s.services, a.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			s.spans = append(s.spans, ss.GetSpans()...)
		}
	}
}

func (s *otlpSink) find(name, traceID string) []*tracepb.Span {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*tracepb.Span
	for _, sp := range s.spans {
		if sp.GetName() == name && hex.EncodeToString(sp.GetTraceId()) == traceID {
			out = append(out, sp)
		}
	}
	return out
}

func (s *otlpSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.spans)
}

// httpReceiver is an OTLP/HTTP (protobuf) receiver at /v1/traces.
func httpReceiver(t *testing.T) (*otlpSink, string) {
	t.Helper()
	sink := &otlpSink{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "unexpected "+r.URL.Path+" "+r.Header.Get("Content-Type"), http.StatusBadRequest)
			return
		}
		b, err := io.ReadAll(r.Body)
		var req coltrace.ExportTraceServiceRequest
		if err != nil || proto.Unmarshal(b, &req) != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		sink.add(&req)
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return sink, srv.URL
}

type grpcTraceService struct {
	coltrace.UnimplementedTraceServiceServer
	sink *otlpSink
}

func (g *grpcTraceService) Export(_ context.Context, req *coltrace.ExportTraceServiceRequest) (*coltrace.ExportTraceServiceResponse, error) {
	g.sink.add(req)
	return &coltrace.ExportTraceServiceResponse{}, nil
}

// grpcReceiver is an OTLP/gRPC receiver on a loopback port.
func grpcReceiver(t *testing.T) (*otlpSink, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sink := &otlpSink{}
	srv := grpc.NewServer()
	coltrace.RegisterTraceServiceServer(srv, &grpcTraceService{sink: sink})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return sink, "http://" + ln.Addr().String()
}

// seenHeaders is a backend that records the trace headers it receives.
type seenHeaders struct {
	mu          sync.Mutex
	traceparent []string
	baggage     []string
}

func traceBackend(t *testing.T, seen *seenHeaders) *httptest.Server {
	return backendFunc(t, func(w http.ResponseWriter, r *http.Request) {
		seen.mu.Lock()
		seen.traceparent = append(seen.traceparent, r.Header.Get("Traceparent"))
		seen.baggage = append(seen.baggage, r.Header.Get("Baggage"))
		seen.mu.Unlock()
		fmt.Fprint(w, "ok")
	})
}

func attr(sp *tracepb.Span, key string) string {
	for _, a := range sp.GetAttributes() {
		if a.GetKey() == key {
			v := a.GetValue()
			if s := v.GetStringValue(); s != "" {
				return s
			}
			return fmt.Sprint(v.GetIntValue())
		}
	}
	return ""
}

func getWith(t *testing.T, url string, hdr ...string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

const (
	clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpan  = "00f067aa0ba902b7"
)

// TestE2ETracing: with an OTLP endpoint set, each request makes a server
// span (child of the client's traceparent) and a client span per upstream
// attempt (a retry makes two), exported over OTLP/HTTP and OTLP/gRPC; the
// backend gets a traceparent naming the attempt's span and the client's
// baggage.
func TestE2ETracing(t *testing.T) {
	t.Parallel()
	for _, proto := range []string{"http/protobuf", "grpc"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			var sink *otlpSink
			var endpoint string
			if proto == "grpc" {
				sink, endpoint = grpcReceiver(t)
			} else {
				sink, endpoint = httpReceiver(t)
			}
			seen := &seenHeaders{}
			live := traceBackend(t, seen)
			cfg := baseCfg + fmt.Sprintf(`
upstreams:
  pool:
    load_balancing: round-robin
    health_check: { disabled: true }
    passive_health: { disabled: true }
    retry: { attempts: 2, backoff: 1ms }
    backends: [ { url: %q }, { url: %q } ]
routes:
  - name: traced
    match: { prefix: / }
    upstream: pool
`, deadURL(t), live.URL)
			p := startAltair(t, cfg,
				"OTEL_EXPORTER_OTLP_ENDPOINT="+endpoint,
				"OTEL_EXPORTER_OTLP_PROTOCOL="+proto,
				"OTEL_SERVICE_NAME=altair-e2e",
				"OTEL_BSP_SCHEDULE_DELAY=50")
			// Round-robin over a dead and a live backend: at least one of
			// two requests tries the dead backend first and is retried.
			for range 2 {
				if code := getWith(t, p.url("/orders/7?x=1"),
					"Traceparent", "00-"+clientTrace+"-"+clientSpan+"-01",
					"Baggage", "tenant=acme"); code != 200 {
					t.Fatalf("GET = %d, want 200", code)
				}
			}
			waitFor(t, 10*time.Second, "exported spans", func() bool {
				return len(sink.find("gateway.request", clientTrace)) == 2 && len(sink.find("upstream.attempt", clientTrace)) >= 3
			})
			servers := sink.find("gateway.request", clientTrace)
			attempts := sink.find("upstream.attempt", clientTrace)
			serverIDs := map[string]bool{}
			for _, sp := range servers {
				if got := hex.EncodeToString(sp.GetParentSpanId()); got != clientSpan {
					t.Errorf("server span parent = %s, want the client's span %s", got, clientSpan)
				}
				if sp.GetKind() != tracepb.Span_SPAN_KIND_SERVER {
					t.Errorf("server span kind = %v", sp.GetKind())
				}
				for k, v := range map[string]string{"altair.route": "traced", "http.request.method": "GET",
					"http.response.status_code": "200", "altair.backend": live.URL, "url.path": "/orders/7"} {
					if got := attr(sp, k); got != v {
						t.Errorf("server span %s = %q, want %q", k, got, v)
					}
				}
				serverIDs[hex.EncodeToString(sp.GetSpanId())] = true
			}
			failed := 0
			attemptIDs := map[string]bool{}
			for _, sp := range attempts {
				if !serverIDs[hex.EncodeToString(sp.GetParentSpanId())] {
					t.Errorf("attempt span's parent %x is not a server span", sp.GetParentSpanId())
				}
				if sp.GetKind() != tracepb.Span_SPAN_KIND_CLIENT {
					t.Errorf("attempt span kind = %v", sp.GetKind())
				}
				if sp.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR {
					failed++
				}
				attemptIDs[hex.EncodeToString(sp.GetSpanId())] = true
			}
			if failed != len(attempts)-2 {
				t.Errorf("%d failed attempt spans of %d, want all but the two that reached the live backend", failed, len(attempts))
			}
			seen.mu.Lock()
			defer seen.mu.Unlock()
			if len(seen.traceparent) != 2 {
				t.Fatalf("backend saw %d requests, want 2", len(seen.traceparent))
			}
			for i, tp := range seen.traceparent {
				parts := strings.Split(tp, "-")
				if len(parts) != 4 || parts[1] != clientTrace || !attemptIDs[parts[2]] {
					t.Errorf("backend traceparent %q: want trace %s and an attempt span as parent", tp, clientTrace)
				}
				if seen.baggage[i] != "tenant=acme" {
					t.Errorf("backend baggage = %q, want tenant=acme", seen.baggage[i])
				}
			}
			sink.mu.Lock()
			defer sink.mu.Unlock()
			if len(sink.services) == 0 || sink.services[0] != "altair-e2e" {
				t.Errorf("service.name = %v, want altair-e2e", sink.services)
			}
		})
	}
}

// TestE2ETracingOff: without an endpoint nothing is exported and the
// client's trace headers reach the backend unchanged.
func TestE2ETracingOff(t *testing.T) {
	t.Parallel()
	sink, endpoint := httpReceiver(t)
	seen := &seenHeaders{}
	b := traceBackend(t, seen)
	// The endpoint is in the environment, but OTEL_SDK_DISABLED wins.
	p := startAltair(t, routeCfg("web", b.URL), "OTEL_EXPORTER_OTLP_ENDPOINT="+endpoint,
		"OTEL_SDK_DISABLED=true", "OTEL_BSP_SCHEDULE_DELAY=50")
	tp := "00-" + clientTrace + "-" + clientSpan + "-01"
	if code := getWith(t, p.url("/x"), "Traceparent", tp, "Baggage", "k=v"); code != 200 {
		t.Fatalf("GET = %d", code)
	}
	time.Sleep(300 * time.Millisecond) // several export intervals
	if n := sink.count(); n != 0 {
		t.Fatalf("%d spans exported with tracing off", n)
	}
	seen.mu.Lock()
	defer seen.mu.Unlock()
	if len(seen.traceparent) != 1 || seen.traceparent[0] != tp || seen.baggage[0] != "k=v" {
		t.Fatalf("backend saw traceparent %q baggage %q, want them unchanged", seen.traceparent, seen.baggage)
	}
	if strings.Contains(p.logs.String(), "tracing on") {
		t.Fatal("log says tracing is on")
	}
}
