//go:build lab

package split

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// device is one lab user's ActiveSync client, with its own TLS connection to the edge.
type device struct {
	User   string
	client *http.Client
	url    string
}

// newDevice loads user's device certificate (leaf and intermediates) and
// aims it at the edge at addr, verifying the edge as serverName.
func newDevice(t testing.TB, usersDir, user, addr, serverName string, roots *x509.CertPool) *device {
	t.Helper()
	dir := filepath.Join(usersDir, user)
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "chain.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatalf("device certificate of %s: %v", user, err)
	}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots, ServerName: serverName, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     time.Minute,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &device{
		User:   user,
		client: &http.Client{Transport: tr, Timeout: 15 * time.Second},
		url:    fmt.Sprintf("https://%s/Microsoft-Server-ActiveSync?Cmd=Sync&User=%s&DeviceId=split%s&DeviceType=SegmeshTest", addr, user, strings.TrimPrefix(user, "user")),
	}
}

// sync sends one Sync and returns the status code (0 with an error when no
// response came).
func (d *device) sync(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, strings.NewReader("sync"))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/vnd.ms-sync.wbxml")
	req.Header.Set("MS-ASProtocolVersion", "14.1")
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

func loadPool(t testing.TB, files ...string) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !pool.AppendCertsFromPEM(data) {
			t.Fatalf("%s holds no PEM certificate", f)
		}
	}
	return pool
}

// outcome is one request's result.
type outcome struct {
	User   string
	Status int
	Err    error
	At     time.Time
}

func (o outcome) ok() bool { return o.Err == nil && o.Status == http.StatusOK }

func (o outcome) String() string {
	if o.Err != nil {
		return fmt.Sprintf("%s at %s: %v", o.User, o.At.Format("15:04:05.000"), o.Err)
	}
	return fmt.Sprintf("%s at %s: HTTP %d", o.User, o.At.Format("15:04:05.000"), o.Status)
}
