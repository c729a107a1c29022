// Package edge is the device-facing role: step 1, 2 and 5 of the request
// path in DESIGN.md, with steps 3 and 4 asked of the identity and ticket roles.
//
// # Where things are
//
// The edge is one package in three parts, a policy and an optional engine,
// told apart by the file names:
//
//   - door_*.go, the front door: the listener (door_listener.go, which also
//     takes back the connections of answered parked Pings), the TLS
//     configuration and the peer record of each connection (door_tls.go),
//     the trust store (door_trust.go), the re-verification of long-lived
//     connections (door_peercheck.go), the revocation snapshot streamed by
//     the crl role (door_revocation*.go), the server certificate and its
//     reload (door_servercert.go), and the connections accepted during the
//     drain's grace (door_drain.go).
//   - kcd_*.go, KCD authentication: the identity cache (kcd_identity.go),
//     the ticket cache with background refresh (kcd_tickets.go), shared
//     calls for concurrent misses (kcd_calls.go, x/sync/singleflight), the
//     Negotiate builders (kcd_negotiate.go), channel binding
//     (kcd_binding.go), the 401 refresh gate (kcd_unauthorized.go) and the
//     rule that nothing reaches Exchange without Negotiate
//     (kcd_failclosed.go).
//   - upstream*.go, Exchange's side: the transport and failover
//     (upstream.go), a reloaded segmesh.edge.exchangeUrls
//     (upstream_reload.go), the header watch (upstream_headerwatch.go),
//     parked Pings and their lot (upstream_park*.go) and the Pings' drain
//     on Stop (upstream_drain.go).
//   - engine_*.go, the edge's own HTTP/1.1 relay (segmesh.edge.http1Engine
//     "relay", the default; "net/http" goes back to the reverse proxy): in
//     place of the reverse proxy and http.Transport for HTTP/1.1 requests
//     but Pings, the same policy rules, its own upstream connection pool,
//     capped per host (engine_relay.go, engine_relay_pool.go).
//   - policy*.go, the request policy: what is done to every request, once,
//     whichever way it reaches Exchange — re-check, authenticate, the header
//     rules, the 401 retry, error mapping (with errors.go), the access line.
//
// Files, not packages: the parts share the per-request state (one
// allocation holds the request's context, state and access-log recorder,
// policy.go), the connection's peer record and the Service's settings on
// the hot path. As packages they would export that state to each other or
// pass it through interfaces, and a parked Ping, which is at once front door
// (its device connection goes back to the listener), upstream and policy,
// would straddle three. The rule that keeps the parts apart is the one the
// packages would enforce: a part uses another's types through their methods
// (peers.keep, not peers' map), and the policy's rules are called by every
// path (reverse proxy, parked Ping, relay) rather than copied.
//
// # A keep-alive Sync, top to bottom
//
//  1. The device's connection completes its TLS handshake (TLS 1.2/1.3):
//     GetConfigForClient serves the trust snapshot of the moment and the
//     server certificate in force (door_servercert.go: a reloaded one
//     applies from the next handshake), and verifyConnection — which
//     unlike VerifyPeerCertificate also runs on resumed sessions —
//     verifies the client certificate with the clientAuth EKU, checks it
//     against the revocation snapshot (checkRevocation) and records the
//     result on the connection's peer (door_tls.go). Later requests on the
//     connection skip this step. Until its first request reaches the
//     handler the connection counts as fresh (door_drain.go), so that a
//     stopping edge answers it instead of closing it.
//  2. ServeHTTP (policy.go) takes the request: one requestCtx is its
//     context, state and recorder. A path outside segmesh.edge.paths is
//     404; without a verified certificate, when one is required (always
//     with KCD), 403.
//  3. recheck: the peer's chain must still be valid and trusted
//     (recheckPeer, two compares while nothing changed) and not revoked in a
//     newer snapshot; otherwise 403, and the refusal sticks to the
//     connection.
//  4. authenticate: the user from the identity cache (the identity role on
//     a miss, one call for concurrent misses) and the ticket from the ticket
//     cache (the ticket role on a miss; refreshed in the background before
//     it ends; an old ticket rides out a KDC outage). A small body is kept
//     so the request can be sent again (makeReplayable). No Exchange URL
//     in the route in force: 503.
//  5. Not a Ping, so it is not parked (below). With segmesh.edge.http1Engine
//     "relay" (the default), an HTTP/1.1 request goes to relayServe
//     (engine_relay.go), which applies steps 5 to 7's rules over its own
//     connection pool. Otherwise (HTTP/2, Upgrade or Expect, "net/http")
//     proxyTracked (upstream_drain.go) hands it to
//     httputil.ReverseProxy, whose Rewrite is the outbound header rule
//     (rewrite): the preferred upstream of the route in force (a reloaded
//     segmesh.edge.exchangeUrls swaps the route, upstream_reload.go: a
//     request under way keeps its upstream), no hop-by-hop headers, no
//     Upgrade, X-Forwarded-* from the connection, no device credentials,
//     and a fresh Negotiate header with a new authenticator, bound to the
//     upstream's certificate (authorize, kcd_binding.go).
//  6. kcdTransport.RoundTrip (upstream.go) refuses to send without that
//     header (requireNegotiate), sends over the shared keep-alive pool
//     (failover: the next upstream when the preferred cannot be dialled),
//     and applies the 401 rule (renewAfter401): a 401 costs the ticket, and
//     a new one is fetched for one more try. pingTransport, around it,
//     records Exchange's time to answer (segmesh_edge_upstream_seconds).
//  7. The answer goes through the inbound header rule (modifyResponse:
//     Exchange's mutual-authentication reply checked, its authentication
//     headers and Server dropped, an unasked 101 refused) and streams to
//     the device with no total timeout; a hung Exchange is cut by the
//     header watch (504).
//  8. finish (policy_access.go) writes the access line, the metrics and
//     the span; a failure anywhere above went through fail, the error
//     mapping (errors.go; proxyError for the reverse proxy's): a plain
//     status for the device, cause and fix for the log.
//
// # A parked Ping, top to bottom
//
// Steps 1 to 4 are the Sync's. Then:
//
//  5. tryPark (upstream_park.go) takes an HTTP/1.x Ping whose body was kept,
//     without Upgrade or Expect (on Linux), and registers it in the parking
//     lot (upstream_park_lot.go), which Stop drains. ping.send dials the
//     upstream failover picks and writes the request through the same
//     rewrite and requireNegotiate (upstream_park_send.go); the device's
//     connection is hijacked from the server, the recorder lets go of the
//     server's buffers, and the server's goroutines end. Could it not be
//     sent, the Ping goes the Sync's way (counted by reason in
//     segmesh_edge_ping_fallbacks), tracked so that Stop can answer it;
//     without a Negotiate header it gets 503 and is not sent at all.
//  6. run and watchDevice, two small goroutines, wait for readiness
//     without buffers: one for Exchange's answer (readResponse: 1xx
//     relayed, a 101 refused, the header bounded), one for the device
//     hanging up (which ends the upstream request as net/http would).
//  7. await applies the same 401 rule; a retry sends the Ping once more
//     and parks again.
//  8. Before delivering, recheck runs again (a Ping is held up to an hour:
//     a certificate revoked meanwhile gets 403 and the connection closes);
//     the answer goes through the same modifyResponse, or a failure through
//     the same fail, and is written to the device (deliver).
//  9. finish writes the same access line; handBack marks the Ping answered
//     in the lot, waits, still without a buffer, for the device's next
//     request (up to the idle timeout) and gives the connection back to
//     the server through the listener (door_listener.go) with its peer
//     record (peers.keep).
//
// # Stop
//
// During segmesh.edge.drainGraceSeconds the edge, already not ready, still
// accepts connections and serves them. When the grace ends, every Ping
// held at Exchange — parked (the lot wakes it) or proxied (its upstream
// request is cancelled) — is answered with EAS Ping Status 1 so the device
// sends it again elsewhere, after the same re-check (a certificate revoked
// during the hold gets 403, recheckHeld for a proxied Ping), and a Ping
// that comes later gets Status 1 at once (answerHeldAtOnce,
// upstream_drain.go). With segmesh.edge.drainSpreadMillis the held ones are
// answered in a random order, in equal batches over that window, not in
// one instant (upstream_drain_spread.go). An EWS GetStreamingEvents
// response is not answered: it finishes within the drain timeout or is cut
// at its deadline (docs/operations.md says why). An EAS Sync that waits (a Wait or HeartbeatInterval
// and no client changes; an empty Sync request is not one, eas_wait.go) goes through the reverse proxy, tracked like a proxied
// Ping, and is answered as its wait ends without changes: an empty Sync
// response with Connection: close. Then the listener closes, the fresh connections
// bring their first request (door_drain.go), and Shutdown lets the others
// finish within the drain timeout; a parked Ping still there at the
// deadline is cut.
//
// The edge has no gRPC API: RegisterGRPC registers nothing.
package edge
