// Package rpc sets up gRPC between segmesh processes in split mode: mTLS
// credentials for servers and clients, an interceptor that checks the
// caller's certificate identity (URI SAN such as spiffe://corp/segmesh/edge,
// or DNS SAN) against an allow-list and answers PERMISSION_DENIED otherwise,
// and the client options that send a user's ticket requests to one ticket
// replica by rendezvous hashing on the user (a small balancer, hrw.go: a
// replica that leaves takes only its own users along, where gRPC's ring_hash
// also moved some of the others'), so each user costs the KDC about one S4U
// exchange per ticket lifetime however many replicas run.
package rpc
