package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/segmesh/segmesh/pkg/crl"
)

// DefaultMaxBytes is the default size cap of a CRL body: 64 MiB, room for
// about 1.3 million entries.
const DefaultMaxBytes = 64 << 20

// DefaultTimeout bounds one download, from dial to the last byte.
const DefaultTimeout = 2 * time.Minute

// Validators are what a server said identifies the CRL it sent, for the next
// conditional GET. The zero value asks unconditionally.
type Validators struct {
	// ETag is the entity tag, as sent; empty when none.
	ETag string `json:"etag,omitempty"`
	// LastModified is the Last-Modified header, as sent; empty when none.
	LastModified string `json:"lastModified,omitempty"`
}

// Result is one download.
type Result struct {
	// Body is the CRL as received (DER or PEM); nil when NotModified.
	Body []byte
	// NotModified reports a 304: the CRL sent before is still current.
	NotModified bool
	// Validators identify Body for the next request; on a 304 they are the
	// ones sent, updated by whatever the server returned.
	Validators Validators
}

// Fetcher downloads CRLs. The zero value is usable; a Fetcher is safe for
// concurrent use once in use.
type Fetcher struct {
	// Client sends the requests; nil means DefaultClient's: dial, TLS
	// handshake and response header timeouts of 30 s, proxy from the
	// environment, no keep-alive, and redirects limited to 5 and to http or
	// https.
	Client *http.Client
	// MaxBytes caps the body; 0 means DefaultMaxBytes.
	MaxBytes int64
	// Timeout bounds one download; 0 means DefaultTimeout.
	Timeout time.Duration
	// UserAgent is sent as User-Agent; empty means "segmesh-crl".
	UserAgent string
}

// CheckURL reports whether raw is an absolute http or https URL with a host,
// the only distribution points segmesh fetches.
func CheckURL(raw string) error {
	if err := checkURL(raw); err != nil {
		return fmt.Errorf("crl: distribution point %q: %w", raw, err)
	}
	return nil
}

func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme %q; only http and https are fetched (publish the CRL over HTTP, e.g. with AD CS Web Enrollment)", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("no host")
	}
	return nil
}

// Fetch downloads the CRL at rawURL, conditionally when prev is set. Errors
// are *crl.Error of kind KindFetch or KindTooLarge naming the URL.
func (f *Fetcher) Fetch(ctx context.Context, rawURL string, prev Validators) (Result, error) {
	fail := func(kind crl.Kind, err error) (Result, error) {
		return Result{}, &crl.Error{URL: rawURL, Kind: kind, Err: err}
	}
	if err := checkURL(rawURL); err != nil {
		return fail(crl.KindFetch, err)
	}
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fail(crl.KindFetch, err)
	}
	ua := f.UserAgent
	if ua == "" {
		ua = "segmesh-crl"
	}
	req.Header.Set("User-Agent", ua)
	req.Header.Set("Accept", "application/pkix-crl, application/x-pkcs7-crl, */*")
	if prev.ETag != "" {
		req.Header.Set("If-None-Match", prev.ETag)
	}
	if prev.LastModified != "" {
		req.Header.Set("If-Modified-Since", prev.LastModified)
	}
	client := f.Client
	if client == nil {
		client = DefaultClient()
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error // its text repeats the method and the URL
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fail(crl.KindFetch, err)
	}
	defer resp.Body.Close()

	v := Validators{ETag: resp.Header.Get("ETag"), LastModified: strongLastModified(resp.Header)}
	switch {
	case resp.StatusCode == http.StatusNotModified:
		if prev == (Validators{}) {
			return fail(crl.KindFetch, errors.New("304 Not Modified to an unconditional request"))
		}
		if v.ETag == "" {
			v.ETag = prev.ETag
		}
		if v.LastModified == "" {
			v.LastModified = prev.LastModified
		}
		return Result{NotModified: true, Validators: v}, nil
	case resp.StatusCode != http.StatusOK:
		return fail(crl.KindFetch, fmt.Errorf("HTTP status %s", resp.Status))
	}

	limit := f.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxBytes
	}
	if resp.ContentLength > limit {
		return fail(crl.KindTooLarge, fmt.Errorf("Content-Length %d over the %d-byte cap", resp.ContentLength, limit))
	}
	size := int64(64 << 10)
	if resp.ContentLength > 0 {
		size = resp.ContentLength + 1
	}
	buf := make([]byte, 0, size)
	body, err := readAll(io.LimitReader(resp.Body, limit+1), buf)
	if err != nil {
		return fail(crl.KindFetch, fmt.Errorf("read body: %w", err))
	}
	if int64(len(body)) > limit {
		return fail(crl.KindTooLarge, fmt.Errorf("body over the %d-byte cap", limit))
	}
	return Result{Body: body, Validators: v}, nil
}

// strongLastModified returns the Last-Modified header when it can serve as a
// validator: RFC 9110 section 8.8.2.2 makes it weak unless the response's
// Date is at least one second later, since a CRL re-published within the
// same second keeps the same Last-Modified and would be answered 304 (the
// lab's CDP does exactly that when a revocation follows a publication).
func strongLastModified(h http.Header) string {
	lm := h.Get("Last-Modified")
	if lm == "" {
		return ""
	}
	modified, err := http.ParseTime(lm)
	if err != nil {
		return ""
	}
	date, err := http.ParseTime(h.Get("Date"))
	if err != nil || date.Before(modified.Add(time.Second)) {
		return ""
	}
	return lm
}

// readAll is io.ReadAll into buf.
func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if errors.Is(err, io.EOF) {
				return b, nil
			}
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// DefaultClient returns the client a Fetcher without one uses.
func DefaultClient() *http.Client {
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   30 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			// One download per URL per interval: a kept-alive connection
			// would only sit idle.
			DisableKeepAlives: true,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("more than 5 redirects")
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("redirect to scheme %q", req.URL.Scheme)
			}
			return nil
		},
	}
}
