package telemetry

import (
	"slices"
	"strings"
)

// Instrument names: every metric a role creates is named here once, so the
// roles, the status page, the Grafana dashboard and the Prometheus alert
// rules (deploy/monitoring, whose test checks every series they name against
// Metrics) cannot drift apart. The names are the OpenTelemetry instrument
// names; Metric.Series gives what /metrics shows for each.
const (
	// MetricEdgeRequests counts device requests by HTTP status.
	MetricEdgeRequests = "edge.requests"
	// MetricEdgeRequestDuration is the request latency, Pings included.
	MetricEdgeRequestDuration = "edge.request.duration"
	// MetricEdgeUpstreamDuration is the time from sending a request to
	// Exchange to its response headers (a retry after a 401 included),
	// Pings excluded: what Exchange costs, apart from the device's side.
	MetricEdgeUpstreamDuration = "segmesh_edge_upstream_seconds"
	// MetricEdgeTicketCache counts the edge's ticket cache lookups by result.
	MetricEdgeTicketCache = "edge.ticket.cache"
	// MetricEdgeIdentityCache counts the edge's identity cache lookups by result.
	MetricEdgeIdentityCache = "edge.identity.cache"
	// MetricEdgeCertificatesRefused counts client certificates refused in
	// the handshake, by reason.
	MetricEdgeCertificatesRefused = "edge.certificates.refused"
	// MetricEdgeParkedPings is the number of parked Pings by state.
	MetricEdgeParkedPings = "segmesh_edge_parked_pings"
	// MetricEdgePingFallbacks counts Pings proxied instead of parked.
	MetricEdgePingFallbacks = "segmesh_edge_ping_fallbacks"
	// MetricEdgeServerCertExpiry is when the edge's server certificate
	// ends (Unix seconds).
	MetricEdgeServerCertExpiry = "segmesh_edge_server_cert_expiry_timestamp_seconds"
	// MetricEdgeExchangeUnauthorized counts 401s from Exchange to a
	// Kerberos request by result: refreshed (a fresh ticket) or passed (to
	// the device, within the refresh interval).
	MetricEdgeExchangeUnauthorized = "segmesh_edge_exchange_unauthorized"
	// MetricEdgeTLSHandshakes counts the device TLS handshakes an edge
	// completed, by result: "resumed" (a session ticket: no certificate
	// signature, the certificate verified again) or "full".
	MetricEdgeTLSHandshakes = "segmesh_edge_tls_handshakes"
	// MetricEdgeTLSTicketKeyAge is the age of the shared session ticket key
	// file in force (since it was last written); absent without one.
	MetricEdgeTLSTicketKeyAge = "segmesh_edge_tls_ticket_key_age_seconds"
	// MetricEdgeTLSTicketKeyStale is 1 while the shared session ticket key
	// file is older than segmesh.edge.tlsSessionTicketKeyMaxAgeHours.
	MetricEdgeTLSTicketKeyStale = "segmesh_edge_tls_ticket_key_stale"

	// MetricIdentityRequests counts certificate mappings by result and source.
	MetricIdentityRequests = "segmesh_identity_requests"
	// MetricIdentityLDAPLookups counts directory lookups by outcome.
	MetricIdentityLDAPLookups = "segmesh_identity_ldap_lookups"
	// MetricIdentityLDAPLookupSeconds is the directory lookup latency.
	MetricIdentityLDAPLookupSeconds = "segmesh_identity_ldap_lookup_seconds"
	// MetricIdentityCacheLookups counts mapping cache lookups by hit.
	MetricIdentityCacheLookups = "segmesh_identity_cache_lookups"

	// MetricTicketRequests counts service-ticket requests by result.
	MetricTicketRequests = "segmesh_ticket_requests"
	// MetricTicketKDCExchanges counts KDC exchanges by stage, realm,
	// result and Kerberos error code.
	MetricTicketKDCExchanges = "segmesh_ticket_kdc_exchanges"
	// MetricTicketCacheEvents counts ticket cache events.
	MetricTicketCacheEvents = "segmesh_ticket_cache_events"
	// MetricTicketRenewals counts service-ticket renewals by result and code.
	MetricTicketRenewals = "segmesh_ticket_renewals"
	// MetricTicketCacheEntries is the number of cached tickets.
	MetricTicketCacheEntries = "segmesh_ticket_cache_entries"
	// MetricTicketTGTAge is the age of the service account's TGT per realm.
	MetricTicketTGTAge = "segmesh_ticket_tgt_age_seconds"
	// MetricTicketTGTExpiry is when the service account's TGT per realm
	// ends (Unix seconds).
	MetricTicketTGTExpiry = "segmesh_ticket_tgt_expiry_timestamp_seconds"

	// MetricEdgeCRLAge is the age of the CRL in force at an edge, per issuer.
	MetricEdgeCRLAge = "segmesh_edge_crl_age_seconds"
	// MetricEdgeCRLNextUpdate is the time left to the nextUpdate of the CRL in
	// force at an edge, per issuer, on the edge's clock (negative once past).
	MetricEdgeCRLNextUpdate = "segmesh_edge_crl_next_update_seconds"
	// MetricEdgeRevocationUnready is 1 on the reason an edge's revocation is
	// not ready, 0 on the others.
	MetricEdgeRevocationUnready = "segmesh_edge_revocation_unready"
	// MetricEdgeCRLRollbacksRefused counts CRLs an edge refused because it
	// holds a newer one of the issuer.
	MetricEdgeCRLRollbacksRefused = "segmesh_edge_crl_rollbacks_refused"
	// MetricCRLFetches counts CRL downloads by URL and result.
	MetricCRLFetches = "segmesh_crl_fetches"
	// MetricCRLAge is the age of the CRL in force per issuer.
	MetricCRLAge = "segmesh_crl_age_seconds"
	// MetricCRLStale is 1 when the CRL in force is past its nextUpdate.
	MetricCRLStale = "segmesh_crl_stale"
	// MetricCRLEntries is the number of revoked serials per issuer.
	MetricCRLEntries = "segmesh_crl_entries"
	// MetricCRLSaveFailures counts writes to its state directory the crl
	// role could not make, by URL and what (reason: record or kept, a CRL
	// not written; touch, mark, remove_kept or remove_record, housekeeping
	// that loses no CRL, url then naming the URL or file concerned).
	MetricCRLSaveFailures = "segmesh_crl_save_failures"
	// MetricCRLUnsaved is 1 while the CRL in force from a distribution
	// point could not be written to the state directory (its source's
	// saveError): a restart may lack it. The failure counter alone goes
	// flat while that lasts.
	MetricCRLUnsaved = "segmesh_crl_unsaved"
	// MetricCRLStateDirEmptyAtStart is 1 when the crl role's state
	// directory held no CRL at the start (a first start, or
	// segmesh.crl.stateDir changed or its contents lost): no floor of an
	// earlier run is in force, so a lagging or replayed CRL decides until a
	// newer one arrives. It stays so until the next start.
	MetricCRLStateDirEmptyAtStart = "segmesh_crl_state_dir_empty_at_start"
	// MetricCRLSnapshotVersion is the revocation snapshot's version.
	MetricCRLSnapshotVersion = "segmesh_crl_snapshot_version"

	// MetricConfigReloads counts reloads of config.json (SIGHUP or a
	// changed file) by result: applied, or refused (the edit is broken and
	// the running configuration stays in use).
	MetricConfigReloads = "segmesh_config_reloads"
	// MetricConfigReloadRefused is 1 while the last edit of config.json was
	// refused: the file on disk is not what runs.
	MetricConfigReloadRefused = "segmesh_config_reload_refused"
	// MetricConfigLastReloadSuccess is when config.json was last loaded and
	// applied (Unix seconds; the start counts).
	MetricConfigLastReloadSuccess = "segmesh_config_last_reload_success_timestamp_seconds"
	// MetricConfigRestartPending is the number of settings changed in
	// config.json that wait for a restart (listen addresses, settings a
	// running role does not apply live).
	MetricConfigRestartPending = "segmesh_config_restart_pending"

	// MetricRPCHandlerPanics counts the role-to-role gRPC calls whose
	// handler panicked, by method: each was answered codes.Internal and its
	// stack logged, and the process kept serving (pkg/rpc's recovery).
	// Any increase is a defect to report with that log line.
	MetricRPCHandlerPanics = "segmesh_rpc_handler_panics"
	// MetricEdgeHandlerPanics counts device requests whose handler
	// panicked at the edge: logged at error level with the stack, that
	// connection closed, the edge kept serving. Any increase is a defect.
	MetricEdgeHandlerPanics = "segmesh_edge_handler_panics"
	// MetricBackgroundPanics counts the panics recovered in a role's own
	// goroutines, by task: a shared call on a cache miss (the ticket role's
	// KDC exchange, the identity role's directory lookup, the edge's calls
	// to those roles), whether or not a caller still waited for it, a
	// background refresh, a CRL fetch. Each was logged at error level with
	// its stack and the role kept serving; a request that waited for a
	// shared call got the panic too, counted again as a handler panic. Any
	// increase is a defect to report with that log line.
	MetricBackgroundPanics = "segmesh_background_panics"

	// MetricTraceExportFailures counts the trace exports to
	// segmesh.telemetry.otlpEndpoint that failed (the collector down,
	// unreachable, or refusing them): those spans are lost. /readyz notes
	// and /status.json (traces) show the last failure until an export
	// succeeds again.
	MetricTraceExportFailures = "segmesh_trace_export_failures"
)

// Kind is an instrument's kind, which decides the suffixes of its series.
type Kind int

// Instrument kinds.
const (
	// Counter is a monotonic sum (synchronous or observable): "_total".
	Counter Kind = iota + 1
	// Gauge is an observable gauge: its name as is.
	Gauge
	// Histogram is a histogram: "_bucket", "_sum" and "_count".
	Histogram
)

// Metric is one instrument as the roles create it.
type Metric struct {
	// Name is the OpenTelemetry instrument name (a Metric... constant).
	Name string
	// Kind is the instrument's kind.
	Kind Kind
	// Unit is the unit the instrument is created with ("s" or empty).
	Unit string
}

// Family returns the metric family name /metrics shows for m: dots become
// underscores, a counter ends in "_total", a unit of seconds adds
// "_seconds" unless the name already ends so (the OpenTelemetry Prometheus
// exporter's rules; TestMetricsCatalogueMatchesExporter checks them).
func (m Metric) Family() string {
	n := strings.ReplaceAll(m.Name, ".", "_")
	if m.Unit == "s" && !strings.HasSuffix(n, "_seconds") {
		n += "_seconds"
	}
	if m.Kind == Counter {
		n += "_total"
	}
	return n
}

// Series returns the series names /metrics shows for m.
func (m Metric) Series() []string {
	f := m.Family()
	if m.Kind == Histogram {
		return []string{f + "_bucket", f + "_sum", f + "_count"}
	}
	return []string{f}
}

// Metrics returns every instrument segmesh's roles create.
func Metrics() []Metric {
	return []Metric{
		{MetricEdgeRequests, Counter, ""},
		{MetricEdgeRequestDuration, Histogram, "s"},
		{MetricEdgeUpstreamDuration, Histogram, "s"},
		{MetricEdgeTicketCache, Counter, ""},
		{MetricEdgeIdentityCache, Counter, ""},
		{MetricEdgeCertificatesRefused, Counter, ""},
		{MetricEdgeParkedPings, Gauge, ""},
		{MetricEdgePingFallbacks, Counter, ""},
		{MetricEdgeServerCertExpiry, Gauge, ""},
		{MetricEdgeExchangeUnauthorized, Counter, ""},
		{MetricEdgeTLSHandshakes, Counter, ""},
		{MetricEdgeTLSTicketKeyAge, Gauge, "s"},
		{MetricEdgeTLSTicketKeyStale, Gauge, ""},
		{MetricIdentityRequests, Counter, ""},
		{MetricIdentityLDAPLookups, Counter, ""},
		{MetricIdentityLDAPLookupSeconds, Histogram, "s"},
		{MetricIdentityCacheLookups, Counter, ""},
		{MetricTicketRequests, Counter, ""},
		{MetricTicketKDCExchanges, Counter, ""},
		{MetricTicketCacheEvents, Counter, ""},
		{MetricTicketRenewals, Counter, ""},
		{MetricTicketCacheEntries, Gauge, ""},
		{MetricTicketTGTAge, Gauge, ""},
		{MetricTicketTGTExpiry, Gauge, ""},
		{MetricEdgeCRLAge, Gauge, "s"},
		{MetricEdgeCRLNextUpdate, Gauge, "s"},
		{MetricEdgeRevocationUnready, Gauge, ""},
		{MetricEdgeCRLRollbacksRefused, Counter, ""},
		{MetricCRLFetches, Counter, ""},
		{MetricCRLAge, Gauge, "s"},
		{MetricCRLStale, Gauge, ""},
		{MetricCRLEntries, Gauge, ""},
		{MetricCRLSnapshotVersion, Gauge, ""},
		{MetricCRLSaveFailures, Counter, ""},
		{MetricCRLUnsaved, Gauge, ""},
		{MetricCRLStateDirEmptyAtStart, Gauge, ""},
		{MetricConfigReloads, Counter, ""},
		{MetricConfigReloadRefused, Gauge, ""},
		{MetricConfigLastReloadSuccess, Gauge, ""},
		{MetricConfigRestartPending, Gauge, ""},
		{MetricRPCHandlerPanics, Counter, ""},
		{MetricEdgeHandlerPanics, Counter, ""},
		{MetricBackgroundPanics, Counter, ""},
		{MetricTraceExportFailures, Counter, ""},
	}
}

// Family returns the metric family name /metrics shows for the catalogued
// instrument named name (a Metric... constant), so a reader in process, such
// as the status page, names series by the constants; "" when name is not in
// Metrics.
func Family(name string) string {
	for _, m := range Metrics() {
		if m.Name == name {
			return m.Family()
		}
	}
	return ""
}

// ExportedSeries returns every series name segmesh's /metrics can show
// that a dashboard or alert may name, sorted: the roles' (Metrics) and
// those of the Go and process collectors Setup registers that are worth
// watching (file descriptors, memory, CPU, goroutines).
func ExportedSeries() []string {
	out := []string{
		"process_open_fds", "process_max_fds", "process_resident_memory_bytes",
		"process_cpu_seconds_total", "process_start_time_seconds", "go_goroutines",
	}
	for _, m := range Metrics() {
		out = append(out, m.Series()...)
	}
	slices.Sort(out)
	return out
}
