package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// monitorScreenshot is where the browser test leaves its screenshot, from the
// repository root; artifacts/ is not committed.
const monitorScreenshot = "artifacts/monitor.png"

// chromiumPath finds a Chromium: ALTAIR_CHROMIUM, else chromium on PATH
// (Debian's package; make test installs it). A missing browser fails the
// test: it is not optional.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ALTAIR_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium found (set ALTAIR_CHROMIUM, or install Debian's chromium: make test does)")
	return ""
}

// browserLog collects what the page must not produce: console errors,
// uncaught exceptions, error log entries (failed loads, CSP violations), and
// requests to anywhere but the gateway.
type browserLog struct {
	mu       sync.Mutex
	problems []string
	requests int
}

func (b *browserLog) add(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, fmt.Sprintf(format, args...))
}

func (b *browserLog) listener(origin string) func(ev any) {
	return func(ev any) {
		switch ev := ev.(type) {
		case *cdpruntime.EventConsoleAPICalled:
			if ev.Type == cdpruntime.ConsoleAPICalledTypeError || ev.Type == cdpruntime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				b.add("console.%s: %s", ev.Type, strings.Join(args, " "))
			}
		case *cdpruntime.EventExceptionThrown:
			d := ev.ExceptionDetails
			desc := d.Text
			if d.Exception != nil {
				desc += " " + d.Exception.Description
			}
			b.add("exception at %s:%d: %s", d.URL, d.LineNumber, desc)
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				b.add("log %s: %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
			}
		case *network.EventRequestWillBeSent:
			b.mu.Lock()
			b.requests++
			b.mu.Unlock()
			if !strings.HasPrefix(ev.Request.URL, origin+"/") {
				b.add("request to %s", ev.Request.URL)
			}
		}
	}
}

func (b *browserLog) snapshot() ([]string, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...), b.requests
}

// monitorView is what the page shows, read from its DOM.
type monitorView struct {
	Status     string `json:"status"`
	RPS        string `json:"rps"`
	P95        string `json:"p95"`
	Goroutines string `json:"goroutines"`
	Backend    string `json:"backend"`
	Breaker    string `json:"breaker"`
	Routes     int    `json:"routes"`
	CPU        string `json:"cpu"`
	RSS        string `json:"rss"`
	Disk       string `json:"disk"`
	Points     int    `json:"points"`
}

const readMonitorView = `(() => {
	const q = (s) => { const e = document.querySelector(s); return e ? e.textContent.trim() : ""; };
	const line = document.querySelector("#rps-spark polyline");
	const pts = line ? (line.getAttribute("points") || "").trim() : "";
	return {
		status: q("#status"), rps: q("#rps"), p95: q("#p95"), goroutines: q("#goroutines"),
		backend: q('#backends tr[data-backend="%[1]s"] td.state'),
		breaker: q('#backends tr[data-backend="%[1]s"] td.breaker'),
		routes: document.querySelectorAll("#routes tbody tr[data-route]").length,
		cpu: q("#cpu-proc"), rss: q("#rss"), disk: q("#disk-used"),
		points: pts === "" ? 0 : pts.split(" ").length,
	};
})()`

// number reads a figure as the page prints it ("1,234.5", "12.3 ms"); ok is
// false for "n/a" and anything else that is not a number.
func number(s string) (float64, bool) {
	f := strings.Fields(strings.ReplaceAll(s, ",", ""))
	if len(f) == 0 {
		return 0, false
	}
	v, err := strconv.ParseFloat(f[0], 64)
	return v, err == nil
}

// TestE2EMonitorPageInChromium opens /monitor of the real binary in headless
// Chromium while traffic flows through the gateway, and checks that the page
// loads cleanly, fetches nothing from elsewhere and shows live numbers.
func TestE2EMonitorPageInChromium(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	web := backend(t, "web")
	var n sync.Mutex
	count := 0
	orders := backendFunc(t, func(w http.ResponseWriter, r *http.Request) {
		n.Lock()
		count++
		i := count
		n.Unlock()
		// A little latency and an occasional server error, so the page has
		// percentiles and an error rate to show.
		time.Sleep(time.Duration(i%4) * time.Millisecond)
		if i%25 == 0 {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "order")
	})
	p := startAltair(t, baseCfg+fmt.Sprintf(`
routes:
  - name: orders
    match: { prefix: /orders }
    backends: [{ url: %s }]
  - name: web
    match: { prefix: / }
    backends: [{ url: %s }]
`, orders.URL, web.URL))

	// Traffic until the test ends: bounded in count and time.
	stop := make(chan struct{})
	var traffic sync.WaitGroup
	client := &http.Client{Timeout: 2 * time.Second}
	for w := range 2 {
		traffic.Go(func() {
			deadline := time.Now().Add(30 * time.Second)
			for i := 0; i < 20000 && time.Now().Before(deadline); i++ {
				select {
				case <-stop:
					return
				case <-time.After(3 * time.Millisecond):
				}
				path := "/orders/" + strconv.Itoa(i)
				if (i+w)%3 == 0 {
					path = "/static/app.css"
				}
				if resp, err := client.Get(p.url(path)); err == nil {
					resp.Body.Close()
				}
			}
		})
	}
	t.Cleanup(func() {
		close(stop)
		traffic.Wait()
	})

	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	t.Cleanup(cancel)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	t.Cleanup(cancelAlloc) // runs before the user data dir is removed: it waits for the browser
	blog := &browserLog{}
	origin := "http://" + p.addr
	tab, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithListener(blog.listener(origin)))
	t.Cleanup(cancelTab)

	start := time.Now()
	resp, err := chromedp.Run(tab, chromedp.NavigateResponse(origin+"/monitor"))
	if err != nil {
		t.Fatalf("open %s/monitor in Chromium: %v", origin, err)
	}
	if resp.Status != http.StatusOK {
		t.Fatalf("GET /monitor in Chromium = %d", resp.Status)
	}

	// Wait, within a deadline, for live figures: requests per second above
	// zero, a latency percentile, the backend healthy, and a few points on the
	// sparkline.
	expr := fmt.Sprintf(readMonitorView, web.URL)
	var v monitorView
	deadline := time.Now().Add(15 * time.Second)
	for {
		v, err = chromedp.Run(tab, chromedp.Evaluate[monitorView](expr))
		if err != nil {
			t.Fatalf("read the page: %v", err)
		}
		rps, rpsOK := number(v.RPS)
		_, p95OK := number(v.P95)
		if v.Status == "live" && rpsOK && rps > 0 && p95OK && v.Backend == "healthy" && v.Points >= 2 {
			break
		}
		if time.Now().After(deadline) {
			problems, _ := blog.snapshot()
			t.Fatalf("the page shows no live numbers after 15s: %+v\nbrowser problems: %q", v, problems)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("live numbers after %v: %+v", time.Since(start).Round(time.Millisecond), v)

	if g, ok := number(v.Goroutines); !ok || g <= 0 {
		t.Errorf("goroutines shown = %q, want a number above 0", v.Goroutines)
	}
	if v.Breaker != "closed" || v.Routes != 2 {
		t.Errorf("breaker %q, %d routes shown; want closed, 2", v.Breaker, v.Routes)
	}
	if runtime.GOOS == "linux" {
		// Linux provides every system figure; elsewhere some read "n/a".
		for name, s := range map[string]string{"process CPU": v.CPU, "RSS": v.RSS, "disk": v.Disk} {
			if _, ok := number(s); !ok {
				t.Errorf("%s shown = %q, want a number on Linux", name, s)
			}
		}
	}

	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	shot := filepath.Join("..", "..", monitorScreenshot)
	if err := os.MkdirAll(filepath.Dir(shot), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes); browser part took %v", monitorScreenshot, len(png), time.Since(start).Round(time.Millisecond))

	problems, requests := blog.snapshot()
	for _, p := range problems {
		t.Errorf("browser: %s", p)
	}
	if requests < 5 {
		t.Errorf("the browser made %d requests, want the page, its assets and several polls", requests)
	}
}
