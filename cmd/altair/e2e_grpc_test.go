package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"
)

// grpcService is grpc's interop TestService, enough of it for the four kinds
// of call: each echoes its payloads, sets a trailer naming the call and ends
// with the status a request asks for.
type grpcService struct {
	testpb.UnimplementedTestServiceServer
}

func echoStatus(s *testpb.EchoStatus) error {
	if s == nil || s.Code == 0 {
		return nil
	}
	return grpcstatus.Error(codes.Code(s.Code), s.Message)
}

func (grpcService) UnaryCall(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	_ = grpc.SetTrailer(ctx, metadata.Pairs("x-call", "unary"))
	if err := echoStatus(in.ResponseStatus); err != nil {
		return nil, err
	}
	return &testpb.SimpleResponse{Payload: &testpb.Payload{Body: append([]byte("echo:"), in.GetPayload().GetBody()...)}}, nil
}

func (grpcService) StreamingOutputCall(in *testpb.StreamingOutputCallRequest, s grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error {
	s.SetTrailer(metadata.Pairs("x-call", "server-stream"))
	for i := range in.ResponseParameters {
		body := fmt.Sprintf("%s-%d", in.GetPayload().GetBody(), i)
		if err := s.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: []byte(body)}}); err != nil {
			return err
		}
	}
	return echoStatus(in.ResponseStatus)
}

func (grpcService) StreamingInputCall(s grpc.ClientStreamingServer[testpb.StreamingInputCallRequest, testpb.StreamingInputCallResponse]) error {
	s.SetTrailer(metadata.Pairs("x-call", "client-stream"))
	total := 0
	for {
		in, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return s.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: int32(total)})
		}
		if err != nil {
			return err
		}
		total += len(in.GetPayload().GetBody())
	}
}

func (grpcService) FullDuplexCall(s grpc.BidiStreamingServer[testpb.StreamingOutputCallRequest, testpb.StreamingOutputCallResponse]) error {
	s.SetTrailer(metadata.Pairs("x-call", "bidi"))
	for {
		in, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := echoStatus(in.ResponseStatus); err != nil {
			return err
		}
		body := append([]byte("echo:"), in.GetPayload().GetBody()...)
		if err := s.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: body}}); err != nil {
			return err
		}
	}
}

// grpcBackend serves grpcService on a loopback port, over TLS when creds is
// set and h2c otherwise, and returns its address.
func grpcBackend(t *testing.T, creds credentials.TransportCredentials) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var opts []grpc.ServerOption
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	s := grpc.NewServer(opts...)
	testpb.RegisterTestServiceServer(s, grpcService{})
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

// grpcClient dials the gateway with h2c and returns the TestService client.
func grpcClient(t *testing.T, addr string) testpb.TestServiceClient {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return testpb.NewTestServiceClient(cc)
}

// TestE2EGRPC calls a real gRPC service through the binary (h2c listener) for
// all four kinds of call, with the backend reached over h2c and over TLS
// (h2): messages, trailers and statuses, OK and not, come through.
func TestE2EGRPC(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile, _ := writeTLSCert(t, dir, "grpc.test", 1)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, upstream string
	}{
		{"h2c", fmt.Sprintf("    transport: {protocol: h2c}\n    backends: [{url: \"http://%s\"}]\n", grpcBackend(t, nil))},
		{"h2", fmt.Sprintf("    transport: {protocol: h2, tls: {ca_file: %q, server_name: grpc.test}}\n    backends: [{url: \"https://%s\"}]\n",
			certFile, grpcBackend(t, credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{pair}})))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := startAltair(t, header("  h2c: true\n", "")+"upstreams:\n  grpc:\n"+tt.upstream+
				"routes:\n  - name: grpc\n    match: {prefix: /grpc.testing.TestService/}\n    upstream: grpc\n")
			checkGRPCCalls(t, grpcClient(t, p.addr))
		})
	}
}

func checkGRPCCalls(t *testing.T, c testpb.TestServiceClient) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	payload := func(s string) *testpb.Payload { return &testpb.Payload{Body: []byte(s)} }
	checkTrailer := func(call string, md metadata.MD) {
		t.Helper()
		if got := md.Get("x-call"); len(got) != 1 || got[0] != call {
			t.Errorf("%s trailer x-call = %q, want %q", call, got, call)
		}
	}

	t.Run("unary", func(t *testing.T) {
		var tr metadata.MD
		resp, err := c.UnaryCall(ctx, &testpb.SimpleRequest{Payload: payload("hi")}, grpc.Trailer(&tr))
		if err != nil || string(resp.GetPayload().GetBody()) != "echo:hi" {
			t.Fatalf("UnaryCall(hi) = %v, %v, want echo:hi", resp, err)
		}
		checkTrailer("unary", tr)
		_, err = c.UnaryCall(ctx, &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.FailedPrecondition), Message: "not ready"}}, grpc.Trailer(&tr))
		if s := grpcstatus.Convert(err); s.Code() != codes.FailedPrecondition || s.Message() != "not ready" {
			t.Errorf("UnaryCall(status 9) error = %v, want FailedPrecondition %q", err, "not ready")
		}
		checkTrailer("unary", tr)
	})

	t.Run("server stream", func(t *testing.T) {
		s, err := c.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{
			Payload:            payload("m"),
			ResponseParameters: make([]*testpb.ResponseParameters, 3),
			ResponseStatus:     &testpb.EchoStatus{Code: int32(codes.Aborted), Message: "after three"},
		})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for {
			m, err := s.Recv()
			if err != nil {
				if st := grpcstatus.Convert(err); st.Code() != codes.Aborted || st.Message() != "after three" {
					t.Errorf("StreamingOutputCall end = %v, want Aborted %q", err, "after three")
				}
				break
			}
			got = append(got, string(m.GetPayload().GetBody()))
		}
		if strings.Join(got, ",") != "m-0,m-1,m-2" {
			t.Errorf("StreamingOutputCall messages = %q, want m-0,m-1,m-2", got)
		}
		checkTrailer("server-stream", s.Trailer())
	})

	t.Run("client stream", func(t *testing.T) {
		s, err := c.StreamingInputCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range []string{"abc", "de", strings.Repeat("x", 100<<10)} {
			if err := s.Send(&testpb.StreamingInputCallRequest{Payload: payload(b)}); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := s.CloseAndRecv()
		if want := int32(5 + 100<<10); err != nil || resp.GetAggregatedPayloadSize() != want {
			t.Fatalf("StreamingInputCall = %v, %v, want aggregated size %d", resp, err, want)
		}
		checkTrailer("client-stream", s.Trailer())
	})

	t.Run("bidi", func(t *testing.T) {
		s, err := c.FullDuplexCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Each answer is awaited before the next message is sent: a gateway
		// that buffered the request stream would hang here.
		for _, b := range []string{"one", "two", "three"} {
			if err := s.Send(&testpb.StreamingOutputCallRequest{Payload: payload(b)}); err != nil {
				t.Fatal(err)
			}
			m, err := s.Recv()
			if err != nil || string(m.GetPayload().GetBody()) != "echo:"+b {
				t.Fatalf("FullDuplexCall(%s) = %v, %v, want echo:%s", b, m, err, b)
			}
		}
		if err := s.Send(&testpb.StreamingOutputCallRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.OutOfRange), Message: "enough"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(); grpcstatus.Code(err) != codes.OutOfRange || grpcstatus.Convert(err).Message() != "enough" {
			t.Errorf("FullDuplexCall end = %v, want OutOfRange %q", err, "enough")
		}
		checkTrailer("bidi", s.Trailer())
	})
}

// TestE2EGRPCGatewayErrors: the gateway's own errors reach a gRPC client as
// gRPC statuses, not JSON: a dead backend is Unavailable, no route
// Unimplemented.
func TestE2EGRPCGatewayErrors(t *testing.T) {
	t.Parallel()
	p := startAltair(t, header("  h2c: true\n", "")+fmt.Sprintf("upstreams:\n  grpc:\n    transport: {protocol: h2c}\n    retry: {attempts: 1}\n    backends: [{url: %q}]\n", deadURL(t))+
		"routes:\n  - name: grpc\n    match: {prefix: /grpc.testing.TestService/}\n    upstream: grpc\n")
	c := grpcClient(t, p.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.UnaryCall(ctx, &testpb.SimpleRequest{})
	if s := grpcstatus.Convert(err); s.Code() != codes.Unavailable || s.Message() != "bad_gateway" {
		t.Errorf("UnaryCall to a dead backend = %v, want Unavailable bad_gateway", err)
	}
	s, err := c.FullDuplexCall(ctx)
	if err == nil {
		_, err = s.Recv()
	}
	if grpcstatus.Code(err) != codes.Unavailable {
		t.Errorf("FullDuplexCall to a dead backend = %v, want Unavailable", err)
	}
	cc, err := grpc.NewClient("passthrough:///"+p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	err = cc.Invoke(ctx, "/other.Service/Call", &testpb.Empty{}, &testpb.Empty{})
	if s := grpcstatus.Convert(err); s.Code() != codes.Unimplemented || s.Message() != "route_not_found" {
		t.Errorf("call with no route = %v, want Unimplemented route_not_found", err)
	}
}
