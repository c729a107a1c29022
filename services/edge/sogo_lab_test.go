//go:build lab

package edge_test

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/internal/labenv"
)

// TestLabSOGoEASClient runs the lab's real EAS client (curl + wbxml) through
// segmesh against SOGo, a real ActiveSync server behind Apache Negotiate,
// with nothing but bob's device certificate: OPTIONS, Provision, FolderSync
// with the plain and the base64 query, Sync (his INBOX), Sync again and a
// Ping. bob's certificate has no UPN: the edge finds bob.smith@lab.test by
// LDAP certificate mapping, gets his ticket by S4U and SOGo sees bob.
func TestLabSOGoEASClient(t *testing.T) {
	lab := labenv.UpSOGo(t)
	// lab.sh env writes the lab's config with SOGo as the upstream.
	file := lab.Raw["LAB_SEGMESH_SOGO_CONFIG"]
	if file == "" {
		t.Fatal("lab.sh env gave no LAB_SEGMESH_SOGO_CONFIG")
	}
	sm := startSegmesh(t, lab, runOptions{configFile: file, config: func(cfg map[string]any) {
		if got := section(section(cfg, "segmesh"), "edge")["exchangeUrls"]; fmt.Sprint(got) != "["+lab.SOGoURL+"]" {
			t.Fatalf("%s: exchangeUrls %v, want [%s]", file, got, lab.SOGoURL)
		}
	}})
	bob := lab.User("bob")
	device := "LABEDGE" + strconv.FormatInt(time.Now().UnixNano(), 36)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, lab.EASClient, "--url", sm.base, "--cert", bob.Cert, "--key", bob.Key,
		"--cacert", lab.ServerCA, "--user", "bob", "--device-id", device, "--state", t.TempDir(), "all", "2")
	start := time.Now()
	b, err := cmd.CombinedOutput()
	out := string(b)
	if err != nil {
		t.Fatalf("eas-client.sh all through segmesh: %v\n%s", err, out)
	}
	t.Logf("eas-client.sh all took %v", time.Since(start))
	for _, want := range []string{"<-- Provision", "<-- FolderSync", "<DisplayName>INBOX</DisplayName>",
		"<-- Sync", "lab message 1 for bob", "<-- Ping"} {
		if !strings.Contains(out, want) {
			t.Errorf("eas-client.sh output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "<-- FolderSync"); n != 2 {
		t.Errorf("%d FolderSync answers, want 2 (plain and base64 query)", n)
	}
	// The access log read Cmd and DeviceId from both query forms. Log lines
	// are written in batches (telemetry.BufferedWriter): wait for the last.
	var logs string
	eventually(5*time.Second, func() bool {
		logs = sm.logs.String()
		return strings.Contains(logs, "cmd=Ping ")
	})
	if line := lineWith(logs, "method=OPTIONS"); !strings.Contains(line, "status=200") {
		t.Errorf("OPTIONS access-log line: %q", line)
	}
	for _, cmd := range []string{"Provision", "FolderSync", "Sync", "Ping"} {
		if !strings.Contains(logs, "device_id="+device) || !strings.Contains(logs, "cmd="+cmd+" ") {
			t.Errorf("no access-log line with cmd=%s device_id=%s", cmd, device)
		}
	}
	if n := strings.Count(logs, "cmd=FolderSync "); n != 2 {
		t.Errorf("%d access-log lines with cmd=FolderSync, want 2 (plain and base64 query)", n)
	}
	if strings.Contains(logs, "status=401") || strings.Contains(logs, "status=5") {
		t.Errorf("an EAS request failed on the way:\n%s", logs)
	}
	if t.Failed() || testing.Verbose() {
		for l := range strings.SplitSeq(logs, "\n") {
			if strings.Contains(l, "msg=request ") {
				t.Log(l)
			}
		}
	}
}
