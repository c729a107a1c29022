// Package split holds the lab integration test of split mode (issue 10):
// one edge, three ticket replicas, one identity and one crl process of the
// real segmesh binary on loopback, with segmesh's own mTLS and allow-list
// between them, driven by the lab's 200 generated users. It shows that each
// user's tickets come from exactly one ticket replica (rendezvous hashing, pkg/rpc/hrw.go, on the
// user), that killing a replica fails no request of a user whose ticket the
// edge holds, and that a caller outside the allow-list is refused.
//
// The test needs the lab and root (it adds /etc/hosts entries marked
// "# segmesh-split-test" and removes them afterwards):
//
//	go test -tags lab -count=1 ./test/split/
package split
