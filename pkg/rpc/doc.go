// Package rpc sets up gRPC between segmesh processes in split mode: mTLS
// credentials for servers and clients, an interceptor that checks the
// caller's certificate identity (URI SAN such as spiffe://corp/segmesh/edge,
// or DNS SAN) against an allow-list and answers PERMISSION_DENIED otherwise,
// and the client options that send a user's ticket requests to one ticket
// replica by consistent hashing on the user (gRPC ring_hash with a request
// hash header, gRFC A76), so each user costs the KDC about one S4U exchange
// per ticket lifetime however many replicas run.
package rpc
