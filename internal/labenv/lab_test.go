//go:build lab

package labenv

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/testpki"
	"github.com/segmesh/segmesh/pkg/config"
)

// echoReply is the part of the Exchange stand-in's JSON the tests read.
type echoReply struct {
	RemoteUser         string `json:"remote_user"`
	Method             string `json:"method"`
	Path               string `json:"path"`
	Query              string `json:"query"`
	OtherAuthorization bool   `json:"other_authorization"`
	BodyLength         int64  `json:"body_length"`
	HTTPS              bool   `json:"https"`
}

func run(t *testing.T, env []string, stdin string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// svcCCache logs svc_seg in with kinit and returns the credential cache.
func svcCCache(t *testing.T, lab *Env) string {
	t.Helper()
	cc := filepath.Join(t.TempDir(), "svc.cc")
	out, err := run(t, lab.KRB5Env(cc), lab.SvcPassword(t)+"\n", "kinit", lab.SvcUser+"@"+lab.Realm)
	if err != nil {
		t.Fatalf("kinit %s: %v\n%s", lab.SvcUser, err, out)
	}
	return cc
}

// s4u runs kvno's S4U2Self + S4U2Proxy for user to spn and returns the
// output cache holding the user's ticket.
func s4u(t *testing.T, lab *Env, svcCC, user, spn string) (string, string, error) {
	t.Helper()
	userCC := filepath.Join(t.TempDir(), "user.cc")
	// MIT kvno: -U sends an enterprise name (a UPN), -I a plain principal.
	flag := "-I"
	if strings.Contains(user, "@") {
		flag = "-U"
	}
	out, err := run(t, lab.KRB5Env(svcCC), "", "kvno", flag, user, "-P", "--out-cache", "FILE:"+userCC, spn)
	return userCC, out, err
}

func TestS4UAndNegotiateToExchange(t *testing.T) {
	lab := Up(t)
	svc := svcCCache(t, lab)
	aliceCC, out, err := s4u(t, lab, svc, "alice", lab.TargetSPN)
	if err != nil {
		t.Fatalf("kvno -I alice -P %s: %v\n%s", lab.TargetSPN, err, out)
	}
	tests := []struct {
		name, base string
		args       []string
	}{
		{"http", lab.ExchangeURL, nil},
		{"https", lab.ExchangeHTTPSURL, []string{"--cacert", lab.ExchangeCA}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-sS", "--fail", "--negotiate", "-u", ":", "--data-binary", "ping-body"},
				tt.args...)
			args = append(args, tt.base+"/Microsoft-Server-ActiveSync?Cmd=Ping&User=alice")
			out, err := run(t, lab.KRB5Env(aliceCC), "", "curl", args...)
			if err != nil {
				t.Fatalf("curl --negotiate: %v\n%s", err, out)
			}
			var rep echoReply
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("reply is not JSON: %v\n%s", err, out)
			}
			want := echoReply{RemoteUser: "alice@" + lab.Realm, Method: "POST", Path: "/Microsoft-Server-ActiveSync",
				Query: "Cmd=Ping&User=alice", BodyLength: int64(len("ping-body")), HTTPS: tt.name == "https"}
			if rep != want {
				t.Errorf("reply = %+v, want %+v", rep, want)
			}
		})
	}
	t.Run("no ticket is refused", func(t *testing.T) {
		resp, err := http.Get(lab.ExchangeURL + "/EWS/Exchange.asmx")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != "Negotiate" {
			t.Errorf("status %d, WWW-Authenticate %q; want 401 Negotiate", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	})
}

func TestS4UOutcomes(t *testing.T) {
	lab := Up(t)
	svc := svcCCache(t, lab)
	tests := []struct {
		user, spn string
		// wantErr is a fragment of MIT's message; empty means success.
		wantErr string
	}{
		{"alice", lab.TargetSPN, ""},
		{"bob.smith@lab.test", lab.TargetSPN, ""},
		{"frank", lab.TargetSPN, ""}, // Samba 4.17 does not enforce Protected Users
		{"user0001", lab.TargetSPN, ""},
		{fmt.Sprintf("user%04d", lab.GeneratedUsers), lab.TargetSPN, ""},
		{"alice", lab.OtherSPN, "can't fulfill requested option"},               // 13: not delegable to
		{"eve", lab.TargetSPN, "can't fulfill requested option"},                // 13: sensitive
		{"dave", lab.TargetSPN, "KDC policy rejects request"},                   // 12: disabled
		{"nobody", lab.TargetSPN, "Client not found in Kerberos database"},      // 6
		{"carol.ext@LAB.TEST", lab.TargetSPN, "not found in Kerberos database"}, // 6: altSecurityIdentities ignored
	}
	for _, tt := range tests {
		t.Run(tt.user+" to "+tt.spn, func(t *testing.T) {
			_, out, err := s4u(t, lab, svc, tt.user, tt.spn)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("kvno: %v\n%s", err, out)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("kvno succeeded, want %q\n%s", tt.wantErr, out)
			case tt.wantErr != "" && !strings.Contains(out, tt.wantErr):
				t.Fatalf("kvno said %q, want %q", out, tt.wantErr)
			}
		})
	}
}

// certFilter is the binary-escaped LDAP filter on userCertificate.
func certFilter(t *testing.T, path string) string {
	t.Helper()
	der := testpki.CertFile(t, path).Raw
	var b strings.Builder
	b.WriteString("(userCertificate=")
	for _, c := range der {
		fmt.Fprintf(&b, "\\%02x", c)
	}
	b.WriteString(")")
	return b.String()
}

func ldapsearch(t *testing.T, lab *Env, ca, url, filter string) (string, error) {
	t.Helper()
	env := append(os.Environ(), "LDAPTLS_CACERT="+ca, "LDAPTLS_REQCERT=demand")
	return run(t, env, "", "ldapsearch", "-LLL", "-x", "-o", "nettimeout=5", "-H", url, "-D", lab.SvcDN,
		"-y", lab.SvcPasswordFile, "-b", lab.BaseDN, filter, "userPrincipalName")
}

func TestLDAPFindsUserByCertificate(t *testing.T) {
	lab := Up(t)
	urls := []string{lab.LDAPURL, lab.LDAPSURL, lab.GCURL, lab.GCSURL, lab.LDAPDirectURL}
	users := []struct{ cert, dn, upn string }{
		{"bob", "CN=bob,CN=Users,", "bob.smith@lab.test"},
		// mallory's certificate names alice in its SAN but is published on mallory.
		{"mallory", "CN=mallory,CN=Users,", "mallory@lab.test"},
	}
	for _, u := range users {
		filter := certFilter(t, lab.User(u.cert).Cert)
		for _, url := range urls {
			t.Run(u.cert+" on "+url, func(t *testing.T) {
				out, err := ldapsearch(t, lab, lab.LDAPCA, url, filter)
				if err != nil {
					t.Fatalf("ldapsearch: %v\n%s", err, out)
				}
				if !strings.Contains(out, "dn: "+u.dn+lab.BaseDN) || !strings.Contains(out, "userPrincipalName: "+u.upn) {
					t.Errorf("ldapsearch found:\n%s\nwant %s with %s", out, u.dn, u.upn)
				}
			})
		}
	}
	t.Run("LDAPS checks the CA", func(t *testing.T) {
		out, err := ldapsearch(t, lab, lab.CAPEM[0], lab.LDAPSURL, "(sAMAccountName=bob)")
		if err == nil {
			t.Errorf("ldapsearch trusted the DC with the wrong CA:\n%s", out)
		}
	})
}

func fetchCRL(t *testing.T, url string) *x509.RevocationList {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	crl, err := x509.ParseRevocationList(b)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return crl
}

func listed(crl *x509.RevocationList, serialHex string) bool {
	for _, e := range crl.RevokedCertificateEntries {
		if fmt.Sprintf("%x", e.SerialNumber) == serialHex {
			return true
		}
	}
	return false
}

func TestRevokeReissuesCRL(t *testing.T) {
	lab := Up(t)
	user := fmt.Sprintf("user%04d", lab.GeneratedUsers-1) // revoked for good by this test
	crlURL := lab.Raw["LAB_CRL_URL_INTER"]
	before := fetchCRL(t, crlURL)
	serial := lab.Revoke(t, user)
	cert := testpki.CertFile(t, lab.User(user).Cert)
	if got := fmt.Sprintf("%x", cert.SerialNumber); got != serial {
		t.Fatalf("lab.sh revoke printed serial %s, certificate has %s", serial, got)
	}
	after := fetchCRL(t, crlURL)
	if !listed(after, serial) {
		t.Errorf("CRL %s does not list %s after revoke", crlURL, serial)
	}
	if after.Number.Cmp(before.Number) <= 0 {
		t.Errorf("CRL number %v did not grow past %v", after.Number, before.Number)
	}
	inter := testpki.CertFile(t, lab.Raw["LAB_CA_INTER"])
	if err := after.CheckSignatureFrom(inter); err != nil {
		t.Errorf("CRL signature: %v", err)
	}
	if !listed(fetchCRL(t, crlURL), fmt.Sprintf("%x", testpki.CertFile(t, lab.User("alice-revoked").Cert).SerialNumber)) {
		t.Errorf("alice-revoked is not on the CRL")
	}
}

func TestDeviceCertificates(t *testing.T) {
	lab := Up(t)
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	for _, p := range lab.CAPEM {
		c := testpki.CertFile(t, p)
		if bytes.Equal(c.RawIssuer, c.RawSubject) {
			roots.AddCert(c)
		} else {
			inters.AddCert(c)
		}
	}
	tests := []struct {
		name   string
		wantOK bool
	}{
		{"alice", true}, {"bob", true}, {"carol", true}, {"mallory", true}, {"user0001", true},
		{"alice-ca2", true}, {"alice-ca3", false}, {"alice-expired", false},
		{"alice-notyet", false}, {"alice-wrongeku", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := testpki.CertFile(t, lab.User(tt.name).Cert).Verify(x509.VerifyOptions{
				Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			})
			if (err == nil) != tt.wantOK {
				t.Errorf("Verify() error = %v, want ok=%v", err, tt.wantOK)
			}
		})
	}
	t.Run("trust PFX", func(t *testing.T) {
		out, err := run(t, os.Environ(), "", "openssl", "pkcs12", "-in", lab.TrustPFX, "-nokeys", "-info",
			"-passin", "pass:"+lab.TrustPFXPassword)
		if err != nil {
			t.Fatalf("openssl pkcs12: %v\n%s", err, out)
		}
		if n := strings.Count(out, "-----BEGIN CERTIFICATE-----"); n != len(lab.CAPEM) {
			t.Errorf("trust PFX holds %d certificates, want %d", n, len(lab.CAPEM))
		}
		if !strings.Contains(out, "AES-256-CBC") {
			t.Errorf("trust PFX is not AES-256:\n%s", out)
		}
	})
}

func dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func hostPort(t *testing.T, rawURL, port string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), port)
}

func TestFaults(t *testing.T) {
	lab := Up(t)
	ldapAddr := hostPort(t, lab.LDAPURL, "389")
	tests := []struct {
		fault string
		down  string
		// up stays reachable while the fault is on.
		up []string
	}{
		{"kdc", lab.KDC, []string{ldapAddr, lab.KDCDirect}},
		{"ldap", ldapAddr, []string{lab.KDC, hostPort(t, lab.LDAPDirectURL, "389")}},
		{"cdp", lab.CDPAddr, []string{lab.KDC, ldapAddr}},
		{"exchange", hostPort(t, lab.ExchangeURL, "80"), []string{lab.KDC, ldapAddr}},
	}
	for _, tt := range tests {
		t.Run(tt.fault, func(t *testing.T) {
			if !dialable(tt.down) {
				t.Fatalf("%s unreachable before the fault", tt.down)
			}
			lab.Fault(t, tt.fault, true)
			if dialable(tt.down) {
				t.Errorf("%s still reachable with fault %s on", tt.down, tt.fault)
			}
			for _, a := range tt.up {
				if !dialable(a) {
					t.Errorf("%s went down with fault %s", a, tt.fault)
				}
			}
			lab.Fault(t, tt.fault, false)
			if !dialable(tt.down) {
				t.Errorf("%s unreachable after fault %s off", tt.down, tt.fault)
			}
		})
	}
	for _, tt := range []struct{ fault, addr string }{{"kdc", lab.KDC}, {"ldap", ldapAddr}} {
		t.Run(tt.fault+" hang", func(t *testing.T) {
			lab.Hang(t, tt.fault)
			c, err := net.DialTimeout("tcp", tt.addr, 2*time.Second)
			if err != nil {
				t.Fatalf("dial %s: %v (a hung forwarder still accepts)", tt.addr, err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(300 * time.Millisecond))
			_, _ = c.Write([]byte{0, 0, 0, 1, 0})
			if _, err := c.Read(make([]byte, 1)); err == nil {
				t.Errorf("hung %s answered", tt.fault)
			} else if ne := net.Error(nil); !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("read from hung %s: %v, want a timeout", tt.fault, err)
			}
			lab.Fault(t, tt.fault, false)
			if !dialable(tt.addr) {
				t.Errorf("%s unreachable after hang off", tt.addr)
			}
		})
	}
	t.Run("cdp garbage", func(t *testing.T) {
		lab.CDPGarbage(t)
		resp, err := http.Get(lab.CRLURLs[0])
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if _, err := x509.ParseRevocationList(b); err == nil || len(b) == 0 {
			t.Errorf("CDP still serves a CRL (%d bytes) in garbage mode", len(b))
		}
	})
}

func TestSOGoActiveSync(t *testing.T) {
	lab := UpSOGo(t)
	svc := svcCCache(t, lab)
	aliceCC, out, err := s4u(t, lab, svc, "alice", lab.TargetSPN)
	if err != nil {
		t.Fatalf("kvno: %v\n%s", err, out)
	}
	u, err := url.Parse(lab.SOGoURL)
	if err != nil {
		t.Fatal(err)
	}
	// SOGo accepts tickets for HTTP/exchange.lab.test: reach it under that name.
	exchange := strings.TrimPrefix(lab.ExchangeHTTPSURL, "https://")
	connectTo := exchange + ":443:" + u.Hostname() + ":443"
	out, err = run(t, lab.KRB5Env(aliceCC), "", lab.EASClient, "--negotiate", "--cacert", lab.SOGoCA,
		"--connect-to", connectTo, "--url", lab.ExchangeHTTPSURL, "--state", t.TempDir(),
		"--device-id", "LABTEST"+strconv.FormatInt(time.Now().UnixNano(), 36), "all", "2")
	if err != nil {
		t.Fatalf("eas-client.sh all: %v\n%s", err, out)
	}
	for _, want := range []string{"<-- FolderSync", "<DisplayName>INBOX</DisplayName>", "lab message 1 for alice", "<-- Ping"} {
		if !strings.Contains(out, want) {
			t.Errorf("eas-client.sh output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "<-- FolderSync"); n != 2 {
		t.Errorf("%d FolderSync answers, want 2 (plain and base64 query)", n)
	}
}

func TestSegmeshConfigLoads(t *testing.T) {
	lab := Up(t)
	cfg, rep, err := config.Load(lab.SegmeshConfig)
	if err != nil {
		t.Fatalf("lab.sh's segmesh config does not load: %v", err)
	}
	for _, p := range rep.Warnings() {
		t.Logf("warning: %s: %s", p.Key, p.Message)
	}
	if !cfg.KCD.Enabled || cfg.KCD.TargetSPN != lab.TargetSPN || len(cfg.KCD.Domains) != 1 ||
		cfg.KCD.Domains[0].DomainController != lab.KDCHost {
		t.Errorf("KCD section = %+v", cfg.KCD)
	}
}

// labPIDs returns every process of the sessions the lab started.
func labPIDs(t *testing.T, lab *Env) map[int]bool {
	t.Helper()
	sessions := map[int]bool{}
	files, _ := filepath.Glob(filepath.Join(lab.Dir, "run", "*.pid"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		fields := strings.Fields(string(b))
		if len(fields) == 0 {
			continue
		}
		if pid, err := strconv.Atoi(fields[0]); err == nil {
			sessions[pid] = true
		}
	}
	if len(sessions) == 0 {
		t.Fatalf("no PID files in %s/run", lab.Dir)
	}
	pids := map[int]bool{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, s := range stats {
		b, err := os.ReadFile(s)
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp session ...: comm may hold spaces.
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 4 || f[0] == "Z" {
			continue
		}
		sid, _ := strconv.Atoi(f[3])
		pid, _ := strconv.Atoi(strings.Fields(string(b))[0])
		if sessions[sid] || sessions[pid] {
			pids[pid] = true
		}
	}
	return pids
}

var ssPID = regexp.MustCompile(`pid=(\d+)`)

// labListeners returns "proto addr" for every socket a lab process listens on.
func labListeners(t *testing.T, pids map[int]bool) []string {
	t.Helper()
	out, err := exec.Command("ss", "-Hltnup").Output()
	if err != nil {
		t.Fatalf("ss: %v", err)
	}
	var got []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 7 {
			continue
		}
		for _, m := range ssPID.FindAllStringSubmatch(line, -1) {
			if pid, _ := strconv.Atoi(m[1]); pids[pid] {
				got = append(got, f[0]+" "+f[4])
				break
			}
		}
	}
	return got
}

func TestListenersOnLoopbackOnly(t *testing.T) {
	lab := Up(t)
	got := labListeners(t, labPIDs(t, lab))
	have := map[string]bool{}
	for _, l := range got {
		proto, addr, _ := strings.Cut(l, " ")
		have[proto+" "+addr] = true
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			t.Errorf("ss address %q: %v", addr, err)
			continue
		}
		if ip := net.ParseIP(strings.TrimPrefix(host, "::ffff:")); ip == nil || !ip.IsLoopback() {
			t.Errorf("lab listener %s is not on loopback", l)
		}
	}
	for _, want := range []string{
		"tcp 127.0.0.2:88", "udp 127.0.0.2:88", "tcp 127.0.0.2:389", "tcp 127.0.0.2:636",
		"tcp 127.0.0.2:3268", "tcp 127.0.0.2:3269", "tcp 127.0.0.3:80", "tcp 127.0.0.3:443",
		"tcp 127.0.0.4:80", "tcp 127.0.0.5:88", "udp 127.0.0.5:88", "tcp 127.0.0.6:389", "tcp 127.0.0.6:636",
	} {
		if !have[want] {
			t.Errorf("no lab listener %s; have %v", want, got)
		}
	}
}

// TestDown stops the lab and checks nothing is left. It runs only with
// SEGMESH_LAB_TEST_DOWN=1 (test binaries of other packages share the lab):
//
//	SEGMESH_LAB_TEST_DOWN=1 go test -tags lab -run TestDown ./internal/labenv
func TestDown(t *testing.T) {
	if os.Getenv("SEGMESH_LAB_TEST_DOWN") != "1" {
		t.Skip("set SEGMESH_LAB_TEST_DOWN=1 to stop the lab")
	}
	lab := Up(t)
	pids := labPIDs(t, lab)
	if len(labListeners(t, pids)) == 0 {
		t.Fatal("the lab has no listeners before down")
	}
	lab.Run(t, "down")
	for pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // gone
		}
		// A zombie holds no socket; PID 1 here may never reap it.
		i := bytes.LastIndexByte(b, ')')
		if f := strings.Fields(string(b[i+1:])); len(f) > 0 && f[0] != "Z" {
			t.Errorf("process %d survived down: %s", pid, b)
		}
	}
	out, err := exec.Command("ss", "-Hltnu").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 5 && regexp.MustCompile(`^127\.0\.0\.[2-8]:`).MatchString(f[4]) {
			t.Errorf("still listening after down: %s", line)
		}
	}
}
