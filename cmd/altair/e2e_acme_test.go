package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
)

// acmeName is the name certificates are asked for in these tests. autocert
// wants a dotted name, so not "localhost"; the CA resolves it through
// loopbackDNS.
const acmeName = "gw.acme.test"

// acmeCA is Pebble, Let's Encrypt's ACME test server, run in the test
// process behind an HTTPS listener on 127.0.0.1. Its validation authority
// is created once the gateway's ports are known (start), since it connects
// to the name being validated at fixed ports.
type acmeCA struct {
	srv     *httptest.Server
	caFile  string // the listener's certificate, for server.tls.acme.ca_file
	handler atomic.Pointer[http.Handler]
	ca      *ca.CAImpl
	logs    syncBuffer
	orders  atomic.Int64 // new-order requests seen
}

var pebbleEnv sync.Once

func newACMECA(t *testing.T) *acmeCA {
	t.Helper()
	pebbleEnv.Do(func() {
		// Read by Pebble when it is built: no random sleep before a
		// validation, and no nonces refused for practice.
		os.Setenv("PEBBLE_VA_NOSLEEP", "1")
		os.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	})
	c := &acmeCA{}
	c.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/order-plz") {
			c.orders.Add(1)
		}
		if h := c.handler.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
		http.Error(w, "not started", http.StatusServiceUnavailable)
	}))
	t.Cleanup(c.srv.Close)
	c.caFile = filepath.Join(t.TempDir(), "acme-ca.pem")
	writeFile(t, c.caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.srv.Certificate().Raw})))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pebble logs:\n%s", c.logs.String())
		}
	})
	return c
}

func (c *acmeCA) directory() string { return c.srv.URL + wfe.DirectoryPath }

// start runs Pebble, validating HTTP-01 at httpPort and TLS-ALPN-01 at
// tlsPort of the name.
func (c *acmeCA) start(t *testing.T, httpPort, tlsPort int) {
	logger := log.New(&c.logs, "pebble ", log.Lmicroseconds)
	store := db.NewMemoryStore()
	c.ca = ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "test"}})
	v := va.New(logger, httpPort, tlsPort, false, loopbackDNS(t), store)
	w := wfe.New(logger, store, v, c.ca, nil, false, false, 1, 1)
	var h http.Handler = w.Handler()
	c.handler.Store(&h)
}

// refuse makes the CA answer every request with 500, as a CA that is down.
func (c *acmeCA) refuse() {
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	})
	c.handler.Store(&h)
}

// roots is the pool of Pebble's root, which signs what it issues.
func (c *acmeCA) roots(t *testing.T) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(c.ca.GetRootCert(0).PEM()) {
		t.Fatal("no Pebble root")
	}
	return pool
}

// loopbackDNS serves DNS over TCP on 127.0.0.1 (as Pebble asks it), answering
// every A question with 127.0.0.1 and AAAA with nothing, and returns its
// address.
func loopbackDNS(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{Listener: l, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, question := range q.Question {
			if question.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return l.Addr().String()
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	return portOf(t, strings.TrimPrefix(deadURL(t), "http://"))
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func acmeConfig(ca *acmeCA, cacheDir, backendURL string) string {
	return header(fmt.Sprintf("  tls:\n    redirect_listen: \"127.0.0.1:0\"\n    acme:\n      enabled: true\n      domains: [%s]\n      email: ops@example.com\n      directory_url: %q\n      ca_file: %q\n      cache_dir: %q\n",
		acmeName, ca.directory(), ca.caFile, cacheDir), "") +
		fmt.Sprintf("routes:\n  - name: a\n    match: {prefix: /}\n    backends:\n      - url: %s\n", backendURL)
}

// getOverTLS makes a GET to addr with SNI name, trusting roots only, and
// returns the body and the certificate served.
func getOverTLS(addr, name string, roots *x509.CertPool, path string) (string, *x509.Certificate, error) {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: name}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	resp, err := client.Get("https://" + addr + path)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return "", nil, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return string(b), resp.TLS.PeerCertificates[0], nil
}

// TestE2EACMETLSALPN: the first handshake naming a listed domain gets a
// certificate from the CA, validated with TLS-ALPN-01 on the TLS listener;
// a name not listed never reaches the CA; after a restart the certificate
// comes from the cache directory, with the CA down.
func TestE2EACMETLSALPN(t *testing.T) {
	t.Parallel()
	be := backend(t, "a")
	ca := newACMECA(t)
	cache := t.TempDir()
	p := launchAltair(t, acmeConfig(ca, cache, be.URL))
	// HTTP-01 has nowhere to go: only TLS-ALPN-01 on the TLS port can pass.
	ca.start(t, closedPort(t), portOf(t, p.addr))
	roots := ca.roots(t)

	body, cert, err := getOverTLS(p.addr, acmeName, roots, "/x")
	if err != nil {
		t.Fatalf("GET through an ACME certificate: %v", err)
	}
	if !strings.HasPrefix(body, "a ") {
		t.Fatalf("body %q, want the backend's", body)
	}
	if len(cert.DNSNames) != 1 || cert.DNSNames[0] != acmeName {
		t.Fatalf("certificate names %v, want [%s]", cert.DNSNames, acmeName)
	}
	if !strings.Contains(p.logs.String(), `"msg":"acme certificate obtained"`) {
		t.Errorf("no log line for the certificate obtained:\n%s", p.logs.String())
	}
	orders := ca.orders.Load()

	// A name that is not listed: no certificate, and no order at the CA.
	if _, _, err := getOverTLS(p.addr, "other.test", nil, "/x"); err == nil {
		t.Fatal("a handshake for an unlisted name succeeded")
	}
	if got := ca.orders.Load(); got != orders {
		t.Fatalf("an unlisted name made %d orders at the CA", got-orders)
	}

	// Restart with the CA down: the cached certificate is served.
	p.signal(syscall.SIGTERM)
	<-p.exited
	ca.refuse()
	p2 := launchAltair(t, acmeConfig(ca, cache, be.URL))
	_, cert2, err := getOverTLS(p2.addr, acmeName, roots, "/x")
	if err != nil {
		t.Fatalf("GET after a restart with the CA down: %v", err)
	}
	if cert2.SerialNumber.Cmp(cert.SerialNumber) != 0 {
		t.Fatalf("after the restart serial %v, want the cached %v", cert2.SerialNumber, cert.SerialNumber)
	}
	if got := ca.orders.Load(); got != orders {
		t.Fatalf("the restart asked the CA for %d new orders; want the cached certificate", got-orders)
	}
}

// TestE2EACMEHTTP01: with TLS-ALPN-01 out of reach, the certificate is
// validated with HTTP-01 on the redirect listener, which still redirects
// every other request to https.
func TestE2EACMEHTTP01(t *testing.T) {
	t.Parallel()
	be := backend(t, "a")
	ca := newACMECA(t)
	p := launchAltair(t, acmeConfig(ca, t.TempDir(), be.URL))
	redirect := redirectAddr(t, p)
	ca.start(t, portOf(t, redirect), closedPort(t))

	if _, _, err := getOverTLS(p.addr, acmeName, ca.roots(t), "/x"); err != nil {
		t.Fatalf("GET through an ACME certificate: %v", err)
	}
	if !strings.Contains(ca.logs.String(), "Attempting to validate w/ HTTP") {
		t.Errorf("the CA did not validate with http-01:\n%s", ca.logs.String())
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + redirect + "/page")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPermanentRedirect || !strings.HasPrefix(resp.Header.Get("Location"), "https://") {
		t.Fatalf("redirect listener: %d %q, want 308 to https", resp.StatusCode, resp.Header.Get("Location"))
	}
	// A challenge path for a token the gateway does not hold is a 404, not
	// a redirect or a proxied request.
	resp, err = client.Get("http://" + redirect + "/.well-known/acme-challenge/unknown")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusPermanentRedirect {
		t.Fatalf("an unknown challenge token: %d", resp.StatusCode)
	}
}
