package httperr

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestIsGRPC(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give string
		want bool
	}{
		{"application/grpc", true},
		{"application/grpc+proto", true},
		{"application/grpc;charset=utf-8", true},
		{"application/grpc-web", false},
		{"application/grpcx", false},
		{"application/json", false},
		{"", false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Header.Set("Content-Type", tt.give)
		if got := IsGRPC(r); got != tt.want {
			t.Errorf("IsGRPC(%q) = %v, want %v", tt.give, got, tt.want)
		}
	}
}

func TestWriteGRPC(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		want   string
	}{
		{http.StatusBadGateway, "14"},
		{http.StatusServiceUnavailable, "14"},
		{http.StatusGatewayTimeout, "4"},
		{http.StatusNotFound, "12"},
		{http.StatusUnauthorized, "16"},
		{http.StatusForbidden, "7"},
		{http.StatusTooManyRequests, "8"},
		{http.StatusRequestEntityTooLarge, "8"},
		{http.StatusBadRequest, "3"},
		{http.StatusRequestURITooLong, "3"},
		{http.StatusInternalServerError, "13"},
		{http.StatusTeapot, "2"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodPost, "/svc/M", nil)
		r.Header.Set("Content-Type", "application/grpc")
		r.Header.Set(RequestIDHeader, "rid")
		w := httptest.NewRecorder()
		Write(w, r, tt.status, "some_code")
		h := w.Header()
		if w.Code != http.StatusOK || h.Get("Grpc-Status") != tt.want || h.Get("Grpc-Message") != "some_code" ||
			h.Get("Content-Type") != "application/grpc" || h.Get(RequestIDHeader) != "rid" || w.Body.Len() != 0 {
			t.Errorf("Write(gRPC, %d) = %d %v %q, want 200 trailers-only with Grpc-Status %s", tt.status, w.Code, h, w.Body.String(), tt.want)
		}
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	w := httptest.NewRecorder()
	Write(w, r, http.StatusBadGateway, CodeBadGateway)
	if w.Code != http.StatusBadGateway || w.Header().Get("Grpc-Status") != "" || w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("Write(GET, 502) = %d %v, want the JSON answer", w.Code, w.Header())
	}
}
