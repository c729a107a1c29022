package refresh

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/crl/fetch"
)

// guardedAttempt is attempt with a panic (a parser or client meeting bytes
// a distribution point sent that it did not expect) turned into a failed
// fetch of kind crl.KindPanic. Each URL is fetched in a goroutine of its
// own (fetchAll), where nothing else would recover it: the process ended
// with every role in it (TestAttackPanicInACRLFetch). As a failed fetch,
// it keeps the last good CRL in force, shows in the URL's status, goes
// stale on /readyz and /status when it lasts, reaches Hooks.OnFetch as
// "panic", and the URL is fetched again after the backoff. The panic value
// and its stack go to the log only, at error level: the status keeps a
// fixed text.
func (r *Refresher) guardedAttempt(ctx context.Context, url string, cur *crl.Index, v fetch.Validators) (result string, got fetched, newV fetch.Validators, err error) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("crl fetch caused a panic; counted as a failed fetch of this distribution point, the refresh goes on",
				"url", url, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = &crl.Error{URL: url, Kind: crl.KindPanic}
			result, got, newV = kindLabel(err), fetched{}, v
		}
	}()
	return r.attempt(ctx, url, cur, v)
}
