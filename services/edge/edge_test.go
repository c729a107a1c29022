package edge

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/segmesh/segmesh/pkg/config"
)

func get(t testing.TB, c *http.Client, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// answer is what a request sent in the background got.
type answer struct {
	status int
	body   string
	err    error
}

// sendAsync sends method url with body and the header fields hdr through c
// in the background; its answer arrives on the channel returned.
func sendAsync(t testing.TB, c *http.Client, method, url, body string, hdr map[string]string) <-chan answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	done := make(chan answer, 1)
	go func() {
		resp, err := c.Do(req)
		if err != nil {
			done <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- answer{resp.StatusCode, string(b), err}
	}()
	return done
}

// holdAt makes ex answer body to every request, holding those hold picks
// until release is called: held is closed when the first of them arrives.
// The test's cleanup releases them too, before the servers close.
func holdAt(t testing.TB, ex *fakeExchange, hold func(*http.Request) bool, body string) (held <-chan struct{}, release func()) {
	heldCh, releaseCh := make(chan struct{}), make(chan struct{})
	var heldOnce, releaseOnce sync.Once
	release = func() { releaseOnce.Do(func() { close(releaseCh) }) }
	t.Cleanup(release)
	ex.handler = func(w http.ResponseWriter, r *http.Request, _ string) {
		if hold(r) {
			heldOnce.Do(func() { close(heldCh) })
			<-releaseCh
		}
		_, _ = io.WriteString(w, body)
	}
	return heldCh, release
}

// byHoldHeader picks the requests that carry X-Hold.
func byHoldHeader(r *http.Request) bool { return r.Header.Get("X-Hold") != "" }

// everyRequest picks every request.
func everyRequest(*http.Request) bool { return true }

const syncPath = "/Microsoft-Server-ActiveSync?Cmd=Sync&User=alice&DeviceId=DEV1&DeviceType=iPhone"

func TestProxyEndToEnd(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("h2=%v", h2), func(t *testing.T) {
			h := newHarness(t, nil, options{})
			cert := h.ca.issue(t, certOpts{cn: "alice"})
			c := h.client(&cert, h2)
			for i := range 3 {
				// The device sends Basic and Proxy-Authorization: neither may reach Exchange.
				resp, body := get(t, c, h.url(syncPath), map[string]string{
					"Authorization": "Basic YWxpY2U6cGFzc3dvcmQ=", "Proxy-Authorization": "Basic eDp5",
				})
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("request %d: status %d: %s", i, resp.StatusCode, body)
				}
				if want := "user=alice@lab.test@LAB.TEST xff=127.0.0.1 proto=https"; !strings.HasPrefix(body, want) {
					t.Fatalf("body %q, want prefix %q", body, want)
				}
				if wantProto := map[bool]int{false: 1, true: 2}[h2]; resp.ProtoMajor != wantProto {
					t.Fatalf("proto %s, want HTTP/%d", resp.Proto, wantProto)
				}
				if resp.Header.Get("MS-Server-ActiveSync") != "15.1" {
					t.Fatalf("MS-Server-ActiveSync header lost: %v", resp.Header)
				}
			}
			// One identity and one ticket RPC for three requests; a fresh
			// authenticator each time (the fake Exchange refuses replays).
			if n := h.idm.calls.Load(); n != 1 {
				t.Errorf("identity calls = %d, want 1", n)
			}
			if n := h.tickets.gets.Load(); n != 1 {
				t.Errorf("ticket calls = %d, want 1", n)
			}
			if n := h.exchange.badAuth.Load(); n != 0 {
				t.Errorf("Exchange saw %d requests with bad authentication", n)
			}
			logs := h.logs.String()
			for _, want := range []string{"upn=alice@lab.test", "device_id=DEV1", "cmd=Sync", "status=200", "duration="} {
				if !strings.Contains(logs, want) {
					t.Errorf("access log lacks %q:\n%s", want, logs)
				}
			}
			for _, secret := range []string{"YWxpY2U6cGFzc3dvcmQ=", "Negotiate "} {
				if strings.Contains(logs, secret) {
					t.Errorf("log holds a credential %q", secret)
				}
			}
		})
	}
}

func TestBasicNeverReachesExchange(t *testing.T) {
	h := newHarness(t, nil, options{})
	var got []string
	h.exchange.handler = func(w http.ResponseWriter, r *http.Request, _ string) {
		got = r.Header.Values("Authorization")
	}
	cert := h.ca.issue(t, certOpts{cn: "bob"})
	resp, _ := get(t, h.client(&cert, false), h.url("/EWS/Exchange.asmx"), map[string]string{"Authorization": "Basic Ym9iOnNlY3JldA=="})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if len(got) != 1 || !strings.HasPrefix(got[0], "Negotiate ") {
		t.Fatalf("Exchange got Authorization %q, want exactly one Negotiate", got)
	}
}

func TestPathPolicy(t *testing.T) {
	h := newHarness(t, nil, options{})
	cert := h.ca.issue(t, certOpts{cn: "alice"})
	c := h.client(&cert, false)
	tests := []struct {
		path string
		want int
	}{
		{"/Microsoft-Server-ActiveSync", 200},
		{"/microsoft-server-activesync?Cmd=Ping", 200},
		{"/EWS/Exchange.asmx", 200},
		{"/autodiscover/autodiscover.xml", 200},
		{"/Autodiscover/Autodiscover.xml", 200},
		{"/owa/", 404},
		{"/Microsoft-Server-ActiveSyncX", 404},
		{"/", 404},
		{"/ews", 404},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, _ := get(t, c, h.url(tt.path), nil)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}

func TestExchangeStatusesPassThrough(t *testing.T) {
	h := newHarness(t, nil, options{})
	h.exchange.handler = func(w http.ResponseWriter, r *http.Request, _ string) {
		switch r.URL.Query().Get("want") {
		case "449":
			w.WriteHeader(449)
		case "451":
			w.Header().Set("X-MS-Location", "https://mail2.lab.test/Microsoft-Server-ActiveSync")
			w.WriteHeader(451)
		case "456", "457", "507":
			code := map[string]int{"456": 456, "457": 457, "507": 507}[r.URL.Query().Get("want")]
			w.WriteHeader(code)
		case "503":
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(503)
		case "options":
			w.Header().Set("MS-ASProtocolVersions", "2.5,12.0,12.1,14.0,14.1,16.0,16.1")
			w.Header().Set("MS-ASProtocolCommands", "Sync,FolderSync,Ping,Provision")
		case "gzip":
			w.Header().Set("Content-Encoding", "gzip")
			_, _ = w.Write([]byte("\x1f\x8bnot-really-gzip"))
		}
	}
	cert := h.ca.issue(t, certOpts{cn: "alice"})
	c := h.client(&cert, false)
	tests := []struct {
		want    string
		status  int
		headers map[string]string
		body    string
	}{
		{"449", 449, nil, ""},
		{"451", 451, map[string]string{"X-MS-Location": "https://mail2.lab.test/Microsoft-Server-ActiveSync"}, ""},
		{"456", 456, nil, ""},
		{"457", 457, nil, ""},
		{"503", 503, map[string]string{"Retry-After": "120"}, ""},
		{"507", 507, nil, ""},
		{"options", 200, map[string]string{"MS-ASProtocolVersions": "2.5,12.0,12.1,14.0,14.1,16.0,16.1", "MS-ASProtocolCommands": "Sync,FolderSync,Ping,Provision"}, ""},
		{"gzip", 200, map[string]string{"Content-Encoding": "gzip"}, "\x1f\x8bnot-really-gzip"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			method := http.MethodPost
			if tt.want == "options" {
				method = http.MethodOptions
			}
			req, _ := http.NewRequest(method, h.url("/Microsoft-Server-ActiveSync?want="+tt.want), nil)
			req.Header.Set("Accept-Encoding", "gzip")
			tr := c.Transport.(*http.Transport)
			resp, err := tr.RoundTrip(req) // no transparent decompression
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			for k, v := range tt.headers {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if tt.body != "" && string(b) != tt.body {
				t.Errorf("body %q, want %q", b, tt.body)
			}
		})
	}
}

func TestExchange401InvalidatesAndRetriesOnce(t *testing.T) {
	h := newHarness(t, nil, options{})
	cert := h.ca.issue(t, certOpts{cn: "alice"})
	c := h.client(&cert, false)
	post := func(body string) *http.Response {
		resp, err := c.Post(h.url(syncPath), "application/vnd.ms-sync.wbxml", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	h.exchange.reject401.Store(1)
	if resp := post("small wbxml"); resp.StatusCode != 200 {
		t.Fatalf("after one 401: status %d, want 200 after the retry", resp.StatusCode)
	}
	if g, i := h.tickets.gets.Load(), h.tickets.invalidates.Load(); g != 2 || i != 1 {
		t.Fatalf("ticket gets=%d invalidates=%d, want 2 and 1", g, i)
	}
	h.exchange.reject401.Store(2)
	resp := post("again")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after two 401s: status %d, want 401", resp.StatusCode)
	}
	if resp.Header.Get("WWW-Authenticate") != "" {
		t.Fatal("the Negotiate challenge reached the device")
	}
	// Within the refresh interval the second 401 costs no fresh ticket
	// (TestExchange401Storm).
	if i := h.tickets.invalidates.Load(); i != 1 {
		t.Fatalf("invalidates=%d, want 1 (one fresh ticket per refresh interval)", i)
	}
}

// TestExchange401Storm: every 401 used to drop the user's ticket at the edge
// and the ticket role and fetch a new S4U pair, so a device looping on a URL
// Exchange answers with 401 drove two KDC exchanges per request (50
// requests, 50 new tickets). Now one fresh ticket per user per interval;
// the other 401s go to the device and are counted.
func TestExchange401Storm(t *testing.T) {
	clk := &testClock{t: time.Now()}
	h := newHarness(t, nil, options{now: clk.Now})
	alice := h.ca.issue(t, certOpts{cn: "alice"})
	bob := h.ca.issue(t, certOpts{cn: "bob"})
	c := h.client(&alice, false)
	h.exchange.reject401.Store(1 << 30)
	for i := range 50 {
		if resp, _ := get(t, c, h.url(syncPath), nil); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("request %d: status %d, want 401", i, resp.StatusCode)
		}
	}
	if g, i := h.tickets.gets.Load(), h.tickets.invalidates.Load(); g != 2 || i != 1 {
		t.Fatalf("50 requests answered 401: ticket gets=%d invalidates=%d, want 2 and 1", g, i)
	}
	if r, p := h.edge.metrics.unauthorizedRefreshed.Load(), h.edge.metrics.unauthorizedPassed.Load(); r != 1 || p != 49 {
		t.Fatalf("401s counted refreshed=%d passed=%d, want 1 and 49", r, p)
	}
	// Another user is not held back by alice's refresh.
	if resp, _ := get(t, h.client(&bob, false), h.url(syncPath), nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bob: status %d", resp.StatusCode)
	}
	if i := h.tickets.invalidates.Load(); i != 2 {
		t.Fatalf("bob's first 401: invalidates=%d, want 2", i)
	}
	// After the interval alice may have one fresh ticket again.
	clk.Add(defaultUnauthorizedRefresh + time.Second)
	h.exchange.reject401.Store(1)
	if resp, _ := get(t, c, h.url(syncPath), nil); resp.StatusCode != 200 {
		t.Fatalf("after the interval: status %d, want 200 after one fresh ticket", resp.StatusCode)
	}
	if i := h.tickets.invalidates.Load(); i != 3 {
		t.Fatalf("after the interval: invalidates=%d, want 3", i)
	}
}

func TestTicketFailures(t *testing.T) {
	h := newHarness(t, nil, options{})
	h.tickets.errs["carol@lab.test"] = kdcError(codes.NotFound, 6, "KDC_ERR_C_PRINCIPAL_UNKNOWN",
		"add altSecurityIdentities Kerberos:carol@LAB.TEST or enable certificate mapping")
	cached := h.ca.issue(t, certOpts{cn: "alice"})
	carol := h.ca.issue(t, certOpts{cn: "carol"})
	fresh := h.ca.issue(t, certOpts{cn: "dave"})
	if resp, _ := get(t, h.client(&cached, false), h.url(syncPath), nil); resp.StatusCode != 200 {
		t.Fatalf("warm-up status %d", resp.StatusCode)
	}

	resp, _ := get(t, h.client(&carol, false), h.url(syncPath), nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("definitive KDC error: status %d, want 403", resp.StatusCode)
	}
	if !strings.Contains(h.logs.String(), "altSecurityIdentities") {
		t.Fatal("the hint is not in the log")
	}

	h.tickets.setUnavailable(true)
	resp, _ = get(t, h.client(&fresh, false), h.url(syncPath), nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("KDC down, new user: status %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp, _ := get(t, h.client(&cached, false), h.url(syncPath), nil); resp.StatusCode != 200 {
		t.Fatalf("KDC down, cached user: status %d, want 200", resp.StatusCode)
	}
}

func TestIdentityFailureIs403(t *testing.T) {
	h := newHarness(t, nil, options{})
	h.idm.errs["nobody"] = statusErr(codes.NotFound, "no user holds this certificate and its SAN has no UPN")
	cert := h.ca.issue(t, certOpts{cn: "nobody"})
	resp, _ := get(t, h.client(&cert, false), h.url(syncPath), nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403", resp.StatusCode)
	}
	if !strings.Contains(h.logs.String(), "no user holds this certificate") {
		t.Fatal("reason not logged")
	}
}

func TestUpstreamDownIs502(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.Segmesh.Edge.ExchangeURLs = []string{"http://127.0.0.1:1"} }, options{})
	cert := h.ca.issue(t, certOpts{cn: "alice"})
	if resp, _ := get(t, h.client(&cert, false), h.url(syncPath), nil); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
}

func TestUpstreamFailover(t *testing.T) {
	h := newHarness(t, func(c *config.Config) {
		c.Segmesh.Edge.ExchangeURLs = append([]string{"http://127.0.0.1:1"}, c.Segmesh.Edge.ExchangeURLs...)
	}, options{})
	cert := h.ca.issue(t, certOpts{cn: "alice"})
	if resp, body := get(t, h.client(&cert, false), h.url(syncPath), nil); resp.StatusCode != 200 {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	if h.edge.upstreams.route.Load().preferred.Load() != 1 {
		t.Fatal("the working upstream did not become preferred")
	}
}

// TestStreamingBothWays proves bodies stream: Exchange receives the start of
// an upload before the device has sent the rest, and the device receives the
// start of a download before Exchange has written the rest.
func TestStreamingBothWays(t *testing.T) {
	const size = 10 << 20
	h := newHarness(t, nil, options{})
	firstIn := make(chan struct{})
	deviceGotFirst := make(chan struct{})
	h.exchange.handler = func(w http.ResponseWriter, r *http.Request, _ string) {
		if r.Method == http.MethodPost {
			buf := make([]byte, 64<<10)
			if _, err := io.ReadFull(r.Body, buf); err != nil {
				t.Errorf("upstream read: %v", err)
				return
			}
			close(firstIn)
			n, _ := io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "%d", n+int64(len(buf)))
			return
		}
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		_, _ = w.Write(chunk)
		http.NewResponseController(w).Flush()
		select {
		case <-deviceGotFirst:
		case <-time.After(5 * time.Second):
			t.Error("device did not receive the first chunk before the rest was written")
			return
		}
		for sent := len(chunk); sent < size; sent += len(chunk) {
			_, _ = w.Write(chunk)
		}
	}
	cert := h.ca.issue(t, certOpts{cn: "alice"})
	c := h.client(&cert, false)

	pr, pw := io.Pipe()
	go func() {
		chunk := bytes.Repeat([]byte("u"), 64<<10)
		_, _ = pw.Write(chunk)
		select {
		case <-firstIn:
		case <-time.After(5 * time.Second):
			pw.CloseWithError(fmt.Errorf("upstream did not start receiving before the upload finished"))
			return
		}
		for sent := len(chunk); sent < size; sent += len(chunk) {
			_, _ = pw.Write(chunk)
		}
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, h.url("/Microsoft-Server-ActiveSync?Cmd=SendMail"), pr)
	alloc0 := totalAlloc()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != fmt.Sprint(size) {
		t.Fatalf("upstream received %s bytes, want %d", b, size)
	}
	// Everything in this process (device, edge, Exchange) together allocates
	// far less than the body: nothing holds it whole.
	if a := totalAlloc() - alloc0; a > size/2 && !raceEnabled {
		t.Errorf("upload allocated %d bytes for a %d-byte body", a, size)
	} else {
		t.Logf("upload of %d bytes allocated %d bytes", size, a)
	}
	alloc0 = totalAlloc()

	resp, err = c.Get(h.url("/Microsoft-Server-ActiveSync?Cmd=ItemOperations"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, 64<<10)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err)
	}
	close(deviceGotFirst)
	n, _ := io.Copy(io.Discard, resp.Body)
	if int(n)+len(first) != size {
		t.Fatalf("device received %d bytes, want %d", int(n)+len(first), size)
	}
	if a := totalAlloc() - alloc0; a > size/2 && !raceEnabled {
		t.Errorf("download allocated %d bytes for a %d-byte body", a, size)
	} else {
		t.Logf("download of %d bytes allocated %d bytes", size, a)
	}
}

func statusErr(c codes.Code, msg string) error { return status.Error(c, msg) }

func totalAlloc() int {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int(m.TotalAlloc)
}
