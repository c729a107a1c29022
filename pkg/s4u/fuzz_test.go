package s4u_test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/segmesh/segmesh/pkg/kdc"
	"github.com/segmesh/segmesh/pkg/kdc/kdctest"
	"github.com/segmesh/segmesh/pkg/s4u"
)

// pipeKDC serves the fake KDC over in-memory connections handed to
// kdc.Transport's Dial, replacing the reply of one kind of request with
// given bytes: the reply goes through the transport's framing and
// classification and the client's decoding, as a KDC's would.
type pipeKDC struct {
	k       *kdctest.KDC
	replace kdctest.Kind
	with    []byte
}

func (p *pipeKDC) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	client, server := net.Pipe()
	go p.serve(server)
	return client, nil
}

func (p *pipeKDC) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return
	}
	req := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(c, req); err != nil {
		return
	}
	before := p.k.Count(p.replace)
	rep := p.k.Handle(req)
	if p.k.Count(p.replace) != before {
		rep = p.with
	}
	out := binary.BigEndian.AppendUint32(nil, uint32(len(rep)))
	_, _ = c.Write(append(out, rep...))
}

// recordReplies returns the fake KDC's replies to one ServiceTicket, by
// kind: the fuzz seeds.
func recordReplies(tb testing.TB) map[kdctest.Kind][]byte {
	tb.Helper()
	k, err := kdctest.New(labConfig())
	if err != nil {
		tb.Fatal(err)
	}
	out := map[kdctest.Kind][]byte{}
	rec := recorder{k: k, out: out}
	c := newClient(tb, &rec, nil)
	if _, err := c.ServiceTicket(context.Background(), "alice@lab.test", target); err != nil {
		tb.Fatal(err)
	}
	return out
}

type recorder struct {
	k   *kdctest.KDC
	out map[kdctest.Kind][]byte
}

func (r *recorder) Exchange(ctx context.Context, realm string, req []byte) ([]byte, error) {
	counts := map[kdctest.Kind]int{}
	for _, kind := range fuzzKinds {
		counts[kind] = r.k.Count(kind)
	}
	rep, err := r.k.Exchange(ctx, realm, req)
	for _, kind := range fuzzKinds {
		if r.k.Count(kind) != counts[kind] && err == nil {
			r.out[kind] = rep
		}
	}
	return rep, err
}

var fuzzKinds = []kdctest.Kind{kdctest.KindAS, kdctest.KindS4U2Self, kdctest.KindS4U2Proxy}

// FuzzReplies feeds arbitrary bytes as the AS-REP, the S4U2Self reply or
// the S4U2Proxy reply through kdc.Transport into a Client: nothing panics,
// and a ticket handed out is for the user and the target asked for.
func FuzzReplies(f *testing.F) {
	for i, kind := range fuzzKinds {
		for k, b := range recordReplies(f) {
			if k == kind {
				f.Add(uint8(i), b)
			}
		}
		f.Add(uint8(i), []byte{0x6d, 0x00})
		f.Add(uint8(i), []byte{0x7e, 0x03, 0x02, 0x01, 0x05})
	}
	k, err := kdctest.New(labConfig())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, mode uint8, b []byte) {
		p := &pipeKDC{k: k, replace: fuzzKinds[int(mode)%len(fuzzKinds)], with: b}
		tr, err := kdc.New(kdc.Config{Realms: map[string][]string{realm: {"kdc.invalid:88"}}, Dial: p.dial, Timeout: 5 * time.Second, Penalty: -1})
		if err != nil {
			t.Fatal(err)
		}
		c := newClient(t, tr, func(cfg *s4u.Config) { cfg.Domains = []string{"CHILD.LAB.TEST"} })
		defer c.Wait()
		tk, err := c.ServiceTicket(context.Background(), "alice@lab.test", target)
		if err != nil {
			return
		}
		if tk.ClientString() != "alice@lab.test@"+realm && tk.ClientString() != `alice\@lab.test@`+realm {
			t.Fatalf("ticket for %s", tk.ClientString())
		}
		if got := principalName(tk); got != target {
			t.Fatalf("ticket to %s", got)
		}
	})
}

func principalName(tk *s4u.Ticket) string { return strings.Join(tk.SName.NameString, "/") }
