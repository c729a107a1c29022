package edge

import (
	"context"
	"testing"
)

type otherKey struct{}

// TestRequestCtx: the request's context answers requestKey with its state,
// passes other keys to its parent, and cancellation still flows through it.
func TestRequestCtx(t *testing.T) {
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), otherKey{}, "v"))
	reqCtx := &requestCtx{Context: parent}
	if state, _ := reqCtx.Value(requestKey{}).(*requestState); state != &reqCtx.state {
		t.Fatalf("requestKey gave %v, want the state", state)
	}
	if v := reqCtx.Value(otherKey{}); v != "v" {
		t.Fatalf("parent's value %v", v)
	}
	child, stop := context.WithCancel(reqCtx)
	defer stop()
	cancel()
	select {
	case <-child.Done():
	default:
		t.Fatal("child not cancelled with the parent")
	}
}
