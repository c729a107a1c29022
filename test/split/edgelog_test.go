//go:build lab

package split

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// edgeRequest is one "request" line of the edge's JSON log.
type edgeRequest struct {
	Time     time.Time `json:"time"`
	Msg      string    `json:"msg"`
	Status   int       `json:"status"`
	UPN      string    `json:"upn"`
	CacheHit bool      `json:"ticket_cache_hit"`
	Failure  *struct {
		Reason string `json:"reason"`
		Cause  string `json:"cause"`
	} `json:"failure"`
}

// edgeRequests reads the edge's request log lines logged after since.
func edgeRequests(t *testing.T, p *proc, since time.Time) []edgeRequest {
	t.Helper()
	f, err := os.Open(p.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []edgeRequest
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var r edgeRequest
		if err := json.Unmarshal(line, &r); err != nil || r.Msg != "request" || r.Time.Before(since) {
			continue
		}
		r.UPN = strings.ToLower(r.UPN)
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
