// Package loadgen is the engine of segload, the benchmark load generator
// (issue 11): device certificates minted from a CA or loaded from files and
// rotated one per TLS connection, EAS-like traffic (small Sync POSTs and
// long-poll Pings), open-loop rate or closed-loop concurrency, bounded in
// count and duration, loopback targets only, and a mergeable log-linear
// latency histogram for the report.
//
// It is not part of the gateway: nothing under services/ or pkg/ imports it.
package loadgen
