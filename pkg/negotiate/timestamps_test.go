package negotiate

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/types"
)

// TestTimestampsStrictlyIncrease: with a clock that does not move (two
// requests in one microsecond, or a clock stepped back), every token of one
// Builder still carries a later (ctime, cusec) than the one before, and
// concurrent callers never share one. Exchange's replay cache (and gokrb5's)
// refuses a second authenticator with the same time.
func TestTimestampsStrictlyIncrease(t *testing.T) {
	f := newFixture(t, etypeID.AES256_CTS_HMAC_SHA1_96, types.PrincipalName{NameType: 1, NameString: []string{"alice"}})
	frozen := time.Now().UTC().Truncate(time.Second)
	b := f.builder(t, Options{Now: func() time.Time { return frozen }})
	const workers, each = 4, 200
	stamps := make([][]time.Time, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				tok, err := b.Token()
				if err != nil {
					t.Error(err)
					return
				}
				_, ap := decodeToken(t, tok, f.key)
				a := ap.Authenticator
				stamps[w] = append(stamps[w], a.CTime.Add(time.Duration(a.Cusec)*time.Microsecond))
			}
		}()
	}
	wg.Wait()
	seen := map[time.Time]bool{}
	for _, s := range stamps {
		for i, ts := range s {
			if seen[ts] {
				t.Fatalf("(ctime, cusec) %v used twice", ts)
			}
			seen[ts] = true
			if i > 0 && !ts.After(s[i-1]) {
				t.Fatalf("%v after %v in one goroutine", ts, s[i-1])
			}
		}
	}
	if len(seen) != workers*each {
		t.Fatalf("%d tokens, want %d", len(seen), workers*each)
	}
}

// TestSameClockTwoHeadersAccepted: two different headers made while the
// clock reads the same microsecond are both accepted by gokrb5's acceptor
// (on a build that took the time straight from the clock the second got 401).
func TestSameClockTwoHeadersAccepted(t *testing.T) {
	for _, et := range []int32{etypeID.AES128_CTS_HMAC_SHA1_96, etypeID.AES256_CTS_HMAC_SHA1_96, etypeID.RC4_HMAC} {
		f := newFixture(t, et, types.PrincipalName{NameType: 1, NameString: []string{"alice"}})
		srv := f.acceptor(t)
		frozen := time.Now()
		b := f.builder(t, Options{Now: func() time.Time { return frozen }})
		for i := range 3 {
			h, err := b.Header()
			if err != nil {
				t.Fatal(err)
			}
			if code, body := get(t, srv.URL, h); code != http.StatusOK {
				t.Fatalf("etype %d header %d with the clock unchanged: %d %q", et, i, code, body)
			}
		}
	}
}
