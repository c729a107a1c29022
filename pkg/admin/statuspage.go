package admin

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/krbhint"
	"github.com/segmesh/segmesh/pkg/telemetry"
)

//go:embed statuspage.html.tmpl
var statusPageHTML string

// Section names and keys the status page reads from the Board, beyond what
// each role already publishes. A section or key nobody publishes is shown as
// "not reported"; docs/operations.md documents the shapes.
const (
	// SectionConfig holds the configuration problems (ConfigSection).
	SectionConfig = "config"
	// KeyKDCErrors is a map from Kerberos error code (as a string) to a count,
	// in the ticket section.
	KeyKDCErrors = "kdc_errors"
	// KeyRecentRefusals is a list of {time, reason, subject, upn, status},
	// newest first, in the edge section.
	KeyRecentRefusals = "recent_refusals"
	// KeyCaches is a list of {name, entries, hits, misses} in any section.
	KeyCaches = "caches"
)

// StatusPageOptions configures StatusPage.
type StatusPageOptions struct {
	// Readiness returns each role's readiness (nil = ready); nil means no
	// role is reported.
	Readiness func() map[string]error
	// Board holds the sections roles publish; nil means none.
	Board *Board
	// ConfigProblems returns the configuration's problems; nil means the
	// page reads the Board's SectionConfig, and else says "not reported".
	ConfigProblems func() []config.Problem
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Refresh is how often the browser reloads the page; 0 means 10 s,
	// negative means never.
	Refresh time.Duration
	// Metrics is the registry behind /metrics (telemetry.Providers.Registry);
	// when set, the page reads cache hit rates, KDC errors by code and
	// refusal counts from it, by the telemetry.Metric... names, where no
	// section publishes them.
	Metrics prometheus.Gatherer
	// PersonalData shows UPNs, certificate subjects and serials, the LDAP
	// endpoint and base DN; false hides them (PersonalKeys).
	PersonalData bool
}

// StatusPage returns the admin status page: server-rendered HTML (no
// script) with the roles and their readiness, the TGT per realm, cache
// sizes and hit rates, KDC errors by code, CRL age and next refresh per
// issuer, recent refusals and configuration problems, read from the same
// Board and readiness /status.json serves. Mount it at /status.
func StatusPage(o StatusPageOptions) http.Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Refresh == 0 {
		o.Refresh = 10 * time.Second
	}
	tmpl := template.Must(template.New("status").Funcs(template.FuncMap{"join": strings.Join}).Parse(statusPageHTML))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		var samples []sample
		if o.Metrics != nil {
			samples = gather(o.Metrics)
		}
		v := buildView(o, samples)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		if err := tmpl.Execute(w, v); err != nil {
			http.Error(w, "render: "+err.Error(), http.StatusInternalServerError)
		}
	})
}

// ConfigSection returns a Board section value function listing problems
// (config.Report's, plus config.MigrationNotes'), for SectionConfig.
func ConfigSection(problems []config.Problem) func() any {
	out := make([]map[string]string, 0, len(problems))
	for _, p := range problems {
		out = append(out, map[string]string{"severity": p.Severity.String(), "key": p.Key, "value": p.Value, "message": p.Message, "fix": p.Fix})
	}
	return func() any { return map[string]any{"problems": out} }
}

// view is what the template renders.
type view struct {
	Now        string
	Refresh    int
	AllReady   bool
	Roles      []roleView
	TGTs       []tgtView
	TGTError   string
	TGTNote    string
	Caches     []cacheView
	KDCErrors  []kdcErrView
	KDCNote    string
	CRLs       []crlView
	CRLNote    string
	CRLSummary string
	Refusals   []refusalView
	RefNote    string
	RefCounts  []string
	Problems   []problemView
	ProbNote   string
	Raw        []rawView
}

type roleView struct {
	Name, Reason string
	Ready        bool
}

type tgtView struct {
	Realm, Age, Expires, Refresh string
	Warn                         bool
}

type cacheView struct {
	Name, Entries, HitRate string
}

type kdcErrView struct {
	Code, Name, Count string
}

type crlView struct {
	Issuer, URL, Entries, Age, Fetched, NextUpdate, NextAttempt, Error string
	Stale                                                              bool
	Failures                                                           int
}

type refusalView struct {
	Time, Who, Reason, Status string
}

type problemView struct {
	Severity, Key, Value, Message, Fix string
}

type rawView struct {
	Name, JSON string
}

const notReported = "not reported"

func buildView(o StatusPageOptions, samples []sample) view {
	now := o.Now()
	v := view{Now: now.UTC().Format(time.RFC3339), Refresh: int(o.Refresh / time.Second)}
	var ready map[string]error
	if o.Readiness != nil {
		ready = o.Readiness()
	}
	v.AllReady = len(ready) > 0
	for _, n := range roleOrder(ready) {
		rv := roleView{Name: n, Ready: ready[n] == nil}
		if !rv.Ready {
			rv.Reason = ready[n].Error()
			v.AllReady = false
		}
		v.Roles = append(v.Roles, rv)
	}
	sections := map[string]map[string]any{}
	if o.Board != nil {
		for name, val := range o.Board.sectionsFor(o.PersonalData) {
			m, raw := generic(val)
			sections[name] = m
			v.Raw = append(v.Raw, rawView{Name: name, JSON: raw})
		}
		sort.Slice(v.Raw, func(i, j int) bool { return v.Raw[i].Name < v.Raw[j].Name })
	}
	fillTGTs(&v, sections["ticket"], now)
	fillCaches(&v, sections, samples)
	fillKDCErrors(&v, sections["ticket"], samples)
	fillCRLs(&v, sections["crl"], now)
	fillRefusals(&v, sections["edge"], now, samples)
	fillProblems(&v, o, sections[SectionConfig])
	return v
}

// roleOrder lists the roles in start order, then any others by name.
func roleOrder(ready map[string]error) []string {
	known := []string{"crl", "identity", "ticket", "edge"}
	var out, rest []string
	for _, n := range known {
		if _, ok := ready[n]; ok {
			out = append(out, n)
		}
	}
	for n := range ready {
		if !slices.Contains(known, n) {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// generic turns a section value into a JSON object, as /status.json shows it.
func generic(v any) (map[string]any, string) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, "unencodable: " + err.Error()
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m, string(b)
}

func str(m map[string]any, k string) string {
	switch x := m[k].(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

func num(m map[string]any, k string) (float64, bool) {
	x, ok := m[k].(float64)
	return x, ok
}

func tm(m map[string]any, k string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, str(m, k))
	if err != nil || t.IsZero() || t.Year() < 2 {
		return time.Time{}
	}
	return t
}

func list(m map[string]any, k string) []map[string]any {
	l, _ := m[k].([]any)
	var out []map[string]any
	for _, e := range l {
		if o, ok := e.(map[string]any); ok {
			out = append(out, o)
		}
	}
	return out
}

// ago renders a duration to the past ("3m ago") or future ("in 5m").
func rel(t, now time.Time) string {
	if t.IsZero() {
		return "–"
	}
	d := now.Sub(t)
	if d >= 0 {
		return short(d) + " ago"
	}
	return "in " + short(-d)
}

func short(d time.Duration) string {
	switch {
	case d < time.Second:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func fillTGTs(v *view, t map[string]any, now time.Time) {
	if t == nil {
		v.TGTNote = notReported + " (no ticket role in this process)"
		return
	}
	v.TGTError = str(t, "last_tgt_error")
	for _, g := range list(t, "tgts") {
		end := tm(g, "end_time")
		v.TGTs = append(v.TGTs, tgtView{Realm: str(g, "realm"), Age: rel(tm(g, "auth_time"), now), Expires: rel(end, now),
			Refresh: rel(tm(g, "refresh_at"), now), Warn: !end.IsZero() && end.Sub(now) < 10*time.Minute})
	}
	if len(v.TGTs) == 0 && v.TGTError == "" {
		v.TGTNote = "no TGT yet (the first ticket request gets one)"
	}
}

// cacheMetrics names, per cache row, the counter that holds its lookups and
// the label values meaning hit and miss.
var cacheMetrics = map[string]struct{ metric, label, hit, miss string }{
	"edge: cached tickets":    {family(telemetry.MetricEdgeTicketCache), "result", "hit", "miss"},
	"edge: cached identities": {family(telemetry.MetricEdgeIdentityCache), "result", "hit", "miss"},
	"identity: entries":       {family(telemetry.MetricIdentityCacheLookups), "hit", "true", "false"},
	"ticket: entries":         {family(telemetry.MetricTicketCacheEvents), "event", "hit", "miss"},
}

// sum adds the samples of a metric family whose labels match want.
func sum(samples []sample, metric string, want map[string]string) (float64, bool) {
	var total float64
	found := false
	for _, s := range samples {
		if s.name != metric {
			continue
		}
		found = true
		ok := true
		for k, v := range want {
			if s.labels[k] != v {
				ok = false
				break
			}
		}
		if ok {
			total += s.value
		}
	}
	return total, found
}

func fillCaches(v *view, sections map[string]map[string]any, samples []sample) {
	add := func(name string, entries float64, hits, misses float64, hasRate bool) {
		if !hasRate {
			if cm, ok := cacheMetrics[name]; ok {
				var hf, mf bool
				hits, hf = sum(samples, cm.metric, map[string]string{cm.label: cm.hit})
				misses, mf = sum(samples, cm.metric, map[string]string{cm.label: cm.miss})
				hasRate = hf || mf
			}
		}
		c := cacheView{Name: name, Entries: strconv.FormatFloat(entries, 'f', 0, 64), HitRate: "hit rate " + notReported}
		if hasRate && hits+misses > 0 {
			c.HitRate = fmt.Sprintf("%.1f%% of %.0f lookups", 100*hits/(hits+misses), hits+misses)
		} else if hasRate {
			c.HitRate = "no lookups yet"
		}
		v.Caches = append(v.Caches, c)
	}
	names := make([]string, 0, len(sections))
	for n := range sections {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := sections[n]
		if cs := list(s, KeyCaches); len(cs) > 0 {
			for _, c := range cs {
				e, _ := num(c, "entries")
				h, hok := num(c, "hits")
				m, mok := num(c, "misses")
				add(n+": "+str(c, "name"), e, h, m, hok && mok)
			}
			continue
		}
		for _, k := range []string{"cache_entries", "cached_tickets", "cached_identities"} {
			if e, ok := num(s, k); ok {
				label := strings.ReplaceAll(strings.TrimPrefix(k, "cache_"), "_", " ")
				add(n+": "+label, e, 0, 0, false)
			}
		}
	}
}

func fillKDCErrors(v *view, t map[string]any, samples []sample) {
	m, ok := t[KeyKDCErrors].(map[string]any)
	if !ok {
		m = kdcErrorsFromMetrics(samples)
	}
	if m == nil {
		v.KDCNote = notReported + " (see " + family(telemetry.MetricTicketKDCExchanges) + "{krb_code} on /metrics)"
		return
	}
	codes := make([]string, 0, len(m))
	for c := range m {
		codes = append(codes, c)
	}
	sort.Slice(codes, func(i, j int) bool {
		a, _ := strconv.Atoi(codes[i])
		b, _ := strconv.Atoi(codes[j])
		return a < b
	})
	for _, c := range codes {
		n, _ := m[c].(float64)
		v.KDCErrors = append(v.KDCErrors, kdcErrView{Code: c, Name: kdcCodeName(c), Count: strconv.FormatFloat(n, 'f', 0, 64)})
	}
	if len(codes) == 0 {
		v.KDCNote = "none since start"
	}
}

// kdcErrorsFromMetrics counts KRB-ERROR answers by code from
// telemetry.MetricTicketKDCExchanges; nil when the counter is absent. Code 25
// (PREAUTH_REQUIRED) at the AS exchange is the normal first round trip.
func kdcErrorsFromMetrics(samples []sample) map[string]any {
	out := map[string]any{}
	found := false
	for _, s := range samples {
		if s.name != family(telemetry.MetricTicketKDCExchanges) {
			continue
		}
		found = true
		code := s.labels["krb_code"]
		if s.labels["result"] != "krb_error" || code == "" || code == "0" || (code == "25" && s.labels["stage"] == "as-req") {
			continue
		}
		n, _ := out[code].(float64)
		out[code] = n + s.value
	}
	if !found {
		return nil
	}
	return out
}

// kdcCodeName names a Kerberos code an operator meets, with the usual cause
// (pkg/krbhint's catalogue).
func kdcCodeName(code string) string {
	n, err := strconv.ParseInt(code, 10, 32)
	if err != nil {
		return ""
	}
	return krbhint.Describe(int32(n))
}

func fillCRLs(v *view, c map[string]any, now time.Time) {
	if c == nil {
		v.CRLNote = notReported + " (no crl role in this process)"
		return
	}
	if on := c["enabled"]; on == false {
		v.CRLNote = "revocation checking is off (enable.cert.revocation.validation)"
	}
	v.CRLSummary = fmt.Sprintf("snapshot %s, interval %s", str(c, "snapshotVersion"), str(c, "interval"))
	for _, s := range list(c, "sources") {
		cv := crlView{Issuer: str(s, "issuer"), URL: str(s, "url"), Entries: str(s, "entries"),
			Age: rel(tm(s, "thisUpdate"), now), Fetched: rel(tm(s, "fetchedAt"), now), NextUpdate: rel(tm(s, "nextUpdate"), now),
			NextAttempt: rel(tm(s, "nextAttempt"), now), Error: str(s, "lastError"), Stale: s["stale"] == true}
		if f, ok := num(s, "failures"); ok {
			cv.Failures = int(f)
		}
		if cv.Issuer == "" {
			cv.Issuer = "(not fetched yet)"
		}
		v.CRLs = append(v.CRLs, cv)
	}
	if len(v.CRLs) == 0 && v.CRLNote == "" {
		v.CRLNote = "no distribution point configured"
	}
}

func fillRefusals(v *view, e map[string]any, now time.Time, samples []sample) {
	for _, s := range samples {
		switch {
		case s.name == family(telemetry.MetricEdgeCertificatesRefused) && s.value > 0:
			v.RefCounts = append(v.RefCounts, fmt.Sprintf("certificate %s: %.0f", s.labels["reason"], s.value))
		case s.name == family(telemetry.MetricEdgeRequests) && s.value > 0 && !strings.HasPrefix(s.labels["status"], "2"):
			v.RefCounts = append(v.RefCounts, fmt.Sprintf("HTTP %s: %.0f", s.labels["status"], s.value))
		}
	}
	sort.Strings(v.RefCounts)
	if _, ok := e[KeyRecentRefusals]; !ok {
		v.RefNote = "recent refusals " + notReported + " (the edge logs each refusal with its cause)"
		return
	}
	for _, r := range list(e, KeyRecentRefusals) {
		who := str(r, "upn")
		if who == "" {
			who = str(r, "subject")
		}
		v.Refusals = append(v.Refusals, refusalView{Time: rel(tm(r, "time"), now), Who: who, Reason: str(r, "reason"), Status: str(r, "status")})
	}
	if len(v.Refusals) == 0 {
		v.RefNote = "none"
	}
}

func fillProblems(v *view, o StatusPageOptions, c map[string]any) {
	switch {
	case o.ConfigProblems != nil:
		for _, p := range o.ConfigProblems() {
			v.Problems = append(v.Problems, problemView{Severity: p.Severity.String(), Key: p.Key, Value: p.Value, Message: p.Message, Fix: p.Fix})
		}
	case c != nil:
		for _, p := range list(c, "problems") {
			v.Problems = append(v.Problems, problemView{Severity: str(p, "severity"), Key: str(p, "key"), Value: str(p, "value"), Message: str(p, "message"), Fix: str(p, "fix")})
		}
	default:
		v.ProbNote = notReported + " (run segmesh config check)"
		return
	}
	if len(v.Problems) == 0 {
		v.ProbNote = "none"
	}
}
