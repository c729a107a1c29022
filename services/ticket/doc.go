// Package ticket is the ticket role (step 4 of the request path): it holds the
// KCD service account's credentials — which never leave this role — keeps a
// TGT per realm through pkg/s4u, obtains service tickets for users by
// S4U2Self + S4U2Proxy, and caches them per (user, SPN): refreshed when a
// request finds less than a margin left, by renewal (one TGS exchange) where
// the KDC renews service tickets and by a new pair where it refuses (Samba),
// one KDC exchange for concurrent misses of one key, a short negative
// cache for definitive KDC answers, bounded with LRU eviction. It serves
// segmesh.ticket.v1.TicketService and maps KDC failures to gRPC statuses with
// a KDCErrorDetail an operator can act on.
package ticket
