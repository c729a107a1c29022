package role

import (
	"regexp"
	"strings"
	"testing"
)

// secretEnd is where the text RedactTarget must hide ends (the last @),
// and secretStart where it begins: after the scheme's "//", after a gRPC
// scheme's ":" (dns:user:pw@host), or at the start.
var schemeSlashes = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)

func secretStart(addr string) int {
	if m := schemeSlashes.FindString(addr); m != "" {
		return len(m)
	}
	for _, s := range grpcSchemes {
		if strings.HasPrefix(addr, s+":") {
			return len(s) + 1
		}
	}
	return 0
}

// checkRedacted fails when RedactTarget(addr) keeps any of the text
// between secretStart and the last @.
func checkRedacted(t *testing.T, addr string) {
	t.Helper()
	got := RedactTarget(addr)
	at := strings.LastIndex(addr, "@")
	if at < 0 {
		if got != addr {
			t.Errorf("RedactTarget(%q) = %q, want it unchanged", addr, got)
		}
		return
	}
	suffix := "xxxxx" + addr[at:]
	kept, ok := strings.CutSuffix(got, suffix)
	if !ok || !strings.HasPrefix(addr, kept) || len(kept) > secretStart(addr) {
		t.Errorf("RedactTarget(%q) = %q: keeps some of %q", addr, got, addr[secretStart(addr):at])
	}
}

// TestAttackRedactTargetKeepsPartOfThePassword (rvlead2, review of
// 5d33ea0): RedactTarget cut at the first "//" or the last "/" before the
// @, wherever it stood, so a password with a "/" in it kept what came
// before it: admin:abc//def@host:9443 became admin:abc//xxxxx@host:9443,
// and admin:pa/ss@host:9443 admin:pa/xxxxx@host:9443, in config check's
// Value. Both targets are refused (gRPC reads them as dns:///...).
func TestAttackRedactTargetKeepsPartOfThePassword(t *testing.T) {
	for _, addr := range []string{
		"admin:abc//def@ticket.seg.svc:9443",
		"admin:pa/ss@ticket.seg.svc:9443",
		"dns:admin:pa/ss@ticket.seg.svc:9443",
		"dns:///admin:pa/ss@ticket.seg.svc:9443",
		"dns://admin:pa//ss@10.0.0.53/ticket:9443",
		"passthrough:///admin:p@ss@x:9443",
		"unix:admin:pa/ss@/run/x.sock",
		"admin:p:w@host:9443",
		"admin:pw@host:9443",
		"[::1]:9443",
		"dns:///[fe80::1%25eth0]:9443",
		"@",
		"//@",
		"",
	} {
		t.Run(addr, func(t *testing.T) { checkRedacted(t, addr) })
	}
}

// FuzzRedactTarget: RedactTarget never panics and never keeps the text
// between the scheme's "//" (or the start) and the last @.
func FuzzRedactTarget(f *testing.F) {
	for _, s := range []string{"dns://admin:pw@10.0.0.53/t:9443", "admin:abc//def@h:1", "a/b@c", "@", "dns:u:p@h", "unix-abstract:a@b", "x://@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) { checkRedacted(t, addr) })
}

// TestAttackPeerTargetPasswordInTheRefusal (rvlead2, review of 5d33ea0):
// targets with user information in every form gRPC reads (a password with
// "/", "@", ":", a space, %40 or a bad escape; passthrough, unix,
// unix-abstract, dns:, dns:///, scheme-less) are refused by CheckPeer and
// Conn alike, and neither refusal shows the password, decoded or not.
// Targets without user information (IPv6 literals, Kubernetes'
// dns:///name:port, a unix socket) are still accepted.
func TestAttackPeerTargetPasswordInTheRefusal(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		secret []string
	}{
		{"dns://admin:Pw%40x@10.0.0.53/ticket:9443", []string{"Pw%40x", "Pw@x"}},
		{"dns://admin:Pw%zzx@10.0.0.53/ticket:9443", []string{"Pw%zzx", "Pwzzx"}},
		{"dns://admin:Pw@x@10.0.0.53/ticket:9443", []string{"Pw@x"}},
		{"dns://admin:Pw x@10.0.0.53/ticket:9443", []string{"Pw x"}},
		{"dns://admin:Pw:x@10.0.0.53/ticket:9443", []string{"Pw:x"}},
		{"dns:///admin:Pw/x@ticket:9443", []string{"Pw/x", "Pw"}},
		{"dns:admin:Pw/x@ticket:9443", []string{"Pw/x", "Pw"}},
		{"admin:Pw//x@ticket:9443", []string{"Pw//x", "Pw"}},
		{"admin:Pw/x@ticket:9443", []string{"Pw/x", "Pw"}},
		{"passthrough:///admin:Pwx@10.0.0.5:9443", []string{"Pwx"}},
		{"unix://admin:Pwx@/run/segmesh/ticket.sock", []string{"Pwx"}},
		{"unix:admin:Pwx@/run/segmesh/ticket.sock", []string{"Pwx"}},
		{"unix-abstract:admin:Pwx@segmesh", []string{"Pwx"}},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			_, checkErr, connErr := checkAndConn(t, tc.addr)
			if checkErr == nil || connErr == nil {
				t.Fatalf("CheckPeer: %v, Conn: %v; want both to refuse", checkErr, connErr)
			}
			for _, s := range tc.secret {
				for _, text := range []string{checkErr.Error(), connErr.Error(), RedactTarget(tc.addr)} {
					if strings.Contains(text, s) {
						t.Errorf("%q shows %q", text, s)
					}
				}
			}
		})
	}
	for _, addr := range []string{"[::1]:9443", "dns:///[fd00::5]:9443", "dns:///ticket.seg.svc.cluster.local:9443", "unix:///run/segmesh/ticket.sock", "passthrough:///10.0.0.5:9443"} {
		t.Run(addr, func(t *testing.T) {
			if _, checkErr, connErr := checkAndConn(t, addr); checkErr != nil || connErr != nil {
				t.Errorf("CheckPeer: %v, Conn: %v; want both to accept", checkErr, connErr)
			}
		})
	}
}
