package ldaptest

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// LDAP protocol operation tags (RFC 4511 4.2 ff.).
const (
	opBindRequest       = 0
	opBindResponse      = 1
	opUnbindRequest     = 2
	opSearchRequest     = 3
	opSearchResultEntry = 4
	opSearchResultDone  = 5
	opAbandonRequest    = 16
	opExtendedRequest   = 23
	opExtendedResponse  = 24
)

// Result codes used by the fake.
const (
	CodeSuccess            = 0
	CodeOperationsError    = 1
	CodeProtocolError      = 2
	CodeSizeLimitExceeded  = 4
	CodeNoSuchObject       = 32
	CodeInvalidCredentials = 49
	CodeInsufficientRights = 50
	CodeUnwillingToPerform = 53
	oidStartTLS            = "1.3.6.1.4.1.1466.20037"
	filterAnd              = 0
	filterOr               = 1
	filterNot              = 2
	filterEqualityMatch    = 3
	filterPresent          = 7
	scopeBaseObject        = 0
)

// Entry is a directory object. Attribute names compare case-insensitively;
// values compare byte for byte, except that text attributes other than
// userCertificate compare case-insensitively as AD does.
type Entry struct {
	// DN is the entry's distinguished name.
	DN string
	// Attrs holds the attribute values.
	Attrs map[string][][]byte
}

// User returns an entry for an AD user with the given sAMAccountName, UPN
// (omitted when empty) and published certificates.
func User(dn, sam, upn string, certs ...[]byte) Entry {
	attrs := map[string][][]byte{
		"objectClass":       {[]byte("top"), []byte("person"), []byte("organizationalPerson"), []byte("user")},
		"sAMAccountName":    {[]byte(sam)},
		"distinguishedName": {[]byte(dn)},
	}
	if upn != "" {
		attrs["userPrincipalName"] = [][]byte{[]byte(upn)}
	}
	if len(certs) > 0 {
		attrs["userCertificate"] = certs
	}
	return Entry{DN: dn, Attrs: attrs}
}

// Server is a running fake directory. Its methods are safe for concurrent use.
type Server struct {
	tb       testing.TB
	tlsConf  *tls.Config
	implicit bool // LDAPS: TLS from the first byte

	mu       sync.Mutex
	ln       net.Listener
	addr     string
	conns    map[net.Conn]struct{}
	entries  []Entry
	binds    map[string]string // DN (lower case) → password
	rootDSE  map[string]string
	hang     bool
	delay    time.Duration
	stopped  bool
	requireT bool // refuse binds before TLS with strongerAuthRequired

	wg       sync.WaitGroup
	searches atomic.Int64
	bindsN   atomic.Int64
	dials    atomic.Int64
	filters  chan string
}

// Options configure a Server.
type Options struct {
	// TLS, when set, makes the server speak LDAPS (Implicit) or accept
	// StartTLS with this configuration.
	TLS *tls.Config
	// Implicit makes the listener LDAPS (TLS from the first byte).
	Implicit bool
	// RequireTLS refuses a simple bind on a connection without TLS with
	// strongerAuthRequired (8), as AD and Samba do by default.
	RequireTLS bool
	// RootDSE holds the rootDSE's attributes, for example
	// defaultNamingContext and rootDomainNamingContext.
	RootDSE map[string]string
}

// New starts a server on 127.0.0.1, port 0, and stops it when tb ends.
func New(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s := &Server{
		tb: tb, tlsConf: opts.TLS, implicit: opts.Implicit, requireT: opts.RequireTLS,
		conns: map[net.Conn]struct{}{}, binds: map[string]string{}, rootDSE: map[string]string{},
		filters: make(chan string, 1024),
	}
	for k, v := range opts.RootDSE {
		s.rootDSE[strings.ToLower(k)] = v
	}
	if err := s.listen("127.0.0.1:0"); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Addr returns host:port.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// URL returns ldap://addr or ldaps://addr followed by path.
func (s *Server) URL(path string) string {
	scheme := "ldap"
	if s.implicit {
		scheme = "ldaps"
	}
	return scheme + "://" + s.Addr() + path
}

// AddBind accepts a simple bind as dn with password.
func (s *Server) AddBind(dn, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.binds[strings.ToLower(dn)] = password
}

// Add adds entries.
func (s *Server) Add(entries ...Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries = append(s.entries, entries...)
}

// SetHang makes the server read requests but never answer searches, to
// test timeouts.
func (s *Server) SetHang(hang bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hang = hang
}

// SetDelay makes the server wait d before answering each search.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Searches returns how many searches (rootDSE included) the server answered.
func (s *Server) Searches() int64 { return s.searches.Load() }

// Binds returns how many bind requests the server received.
func (s *Server) Binds() int64 { return s.bindsN.Load() }

// Dials returns how many connections the server accepted.
func (s *Server) Dials() int64 { return s.dials.Load() }

// Filters returns a channel carrying the string form of every search
// filter received (buffered; older ones are dropped when full).
func (s *Server) Filters() <-chan string { return s.filters }

// Stop closes the listener and every connection, as a directory outage.
func (s *Server) Stop() {
	s.mu.Lock()
	s.stopped = true
	ln := s.ln
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	s.wg.Wait()
}

// Restart listens again on the same address after Stop.
func (s *Server) Restart() error {
	s.mu.Lock()
	addr := s.addr
	s.stopped = false
	s.mu.Unlock()
	return s.listen(addr)
}

// Close stops the server for good.
func (s *Server) Close() { s.Stop() }

func (s *Server) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("ldaptest: listen: %w", err)
	}
	s.mu.Lock()
	s.ln, s.addr = ln, ln.Addr().String()
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.dials.Add(1)
			s.mu.Lock()
			if s.stopped {
				s.mu.Unlock()
				_ = c.Close()
				return
			}
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
			}()
		}
	}()
	return nil
}

func (s *Server) forget(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	_ = c.Close()
}

// serve answers one connection until it closes or unbinds.
func (s *Server) serve(raw net.Conn) {
	conn := raw
	defer func() { s.forget(raw) }()
	isTLS := false
	if s.implicit {
		tc := tls.Server(raw, s.tlsConf)
		if err := tc.Handshake(); err != nil {
			return
		}
		conn, isTLS = tc, true
	}
	for {
		p, err := ber.ReadPacket(conn)
		if err != nil {
			return
		}
		if len(p.Children) < 2 {
			return
		}
		id, ok := p.Children[0].Value.(int64)
		if !ok {
			return
		}
		op := p.Children[1]
		switch op.Tag {
		case opBindRequest:
			s.bindsN.Add(1)
			code, msg := s.bind(op, isTLS)
			if err := write(conn, id, result(opBindResponse, code, msg)); err != nil {
				return
			}
		case opSearchRequest:
			s.mu.Lock()
			hang, delay := s.hang, s.delay
			s.mu.Unlock()
			if hang {
				continue
			}
			if delay > 0 {
				time.Sleep(delay) // the fake's slowness, not a wait for an event
			}
			if err := s.search(conn, id, op); err != nil {
				return
			}
		case opExtendedRequest:
			name := ""
			if len(op.Children) > 0 {
				name = op.Children[0].Data.String()
			}
			if name != oidStartTLS || s.tlsConf == nil || isTLS {
				if err := write(conn, id, result(opExtendedResponse, CodeProtocolError, "unsupported extended operation")); err != nil {
					return
				}
				continue
			}
			if err := write(conn, id, result(opExtendedResponse, CodeSuccess, "")); err != nil {
				return
			}
			tc := tls.Server(raw, s.tlsConf)
			if err := tc.Handshake(); err != nil {
				return
			}
			conn, isTLS = tc, true
		case opUnbindRequest:
			return
		case opAbandonRequest:
		default:
			return
		}
	}
}

func (s *Server) bind(op *ber.Packet, isTLS bool) (int64, string) {
	if len(op.Children) < 3 {
		return CodeProtocolError, "malformed bind"
	}
	dn := op.Children[1].Data.String()
	pw := op.Children[2].Data.String()
	if s.requireT && !isTLS {
		return 8, "00002028: LdapErr: DSID-0C090256, comment: The server requires binds to turn on integrity checking if SSL\\TLS are not already active on the connection"
	}
	s.mu.Lock()
	want, ok := s.binds[strings.ToLower(dn)]
	s.mu.Unlock()
	if !ok || pw == "" || pw != want {
		return CodeInvalidCredentials, "80090308: LdapErr: DSID-0C09041C, comment: AcceptSecurityContext error, data 52e, v4563"
	}
	return CodeSuccess, ""
}

func (s *Server) search(conn net.Conn, id int64, op *ber.Packet) error {
	if len(op.Children) < 8 {
		return write(conn, id, result(opSearchResultDone, CodeProtocolError, "malformed search"))
	}
	base := op.Children[0].Data.String()
	scope, _ := op.Children[1].Value.(int64)
	sizeLimit, _ := op.Children[3].Value.(int64)
	filter := op.Children[6]
	var wanted []string
	for _, a := range op.Children[7].Children {
		wanted = append(wanted, a.Data.String())
	}
	select {
	case s.filters <- describe(filter):
	default:
	}
	s.searches.Add(1)

	if base == "" && scope == scopeBaseObject {
		s.mu.Lock()
		attrs := map[string][][]byte{"objectClass": {[]byte("top")}}
		for k, v := range s.rootDSE {
			attrs[k] = [][]byte{[]byte(v)}
		}
		s.mu.Unlock()
		if match(filter, attrs) {
			if err := write(conn, id, entryPacket("", attrs, wanted)); err != nil {
				return err
			}
		}
		return write(conn, id, result(opSearchResultDone, CodeSuccess, ""))
	}

	s.mu.Lock()
	baseExists := false
	var hits []Entry
	for _, e := range s.entries {
		if strings.EqualFold(e.DN, base) || hasSuffixDN(e.DN, base) || hasSuffixDN(base, e.DN) {
			baseExists = true
		}
		if !(strings.EqualFold(e.DN, base) || hasSuffixDN(e.DN, base)) {
			continue
		}
		if match(filter, e.Attrs) {
			hits = append(hits, e)
		}
	}
	s.mu.Unlock()
	if !baseExists {
		return write(conn, id, result(opSearchResultDone, CodeNoSuchObject, "0000208D: NameErr: DSID-03100241, problem 2001 (NO_OBJECT)"))
	}
	code := int64(CodeSuccess)
	if sizeLimit > 0 && int64(len(hits)) > sizeLimit {
		hits, code = hits[:sizeLimit], CodeSizeLimitExceeded
	}
	for _, e := range hits {
		if err := write(conn, id, entryPacket(e.DN, e.Attrs, wanted)); err != nil {
			return err
		}
	}
	return write(conn, id, result(opSearchResultDone, code, ""))
}

func hasSuffixDN(dn, base string) bool {
	return base != "" && len(dn) > len(base) && strings.HasSuffix(strings.ToLower(dn), ","+strings.ToLower(base))
}

// match evaluates an RFC 4511 filter against attrs. Unsupported filter
// kinds match nothing.
func match(f *ber.Packet, attrs map[string][][]byte) bool {
	switch f.Tag {
	case filterAnd:
		for _, c := range f.Children {
			if !match(c, attrs) {
				return false
			}
		}
		return true
	case filterOr:
		for _, c := range f.Children {
			if match(c, attrs) {
				return true
			}
		}
		return false
	case filterNot:
		return len(f.Children) == 1 && !match(f.Children[0], attrs)
	case filterPresent:
		return len(values(attrs, f.Data.String())) > 0
	case filterEqualityMatch:
		if len(f.Children) != 2 {
			return false
		}
		name := f.Children[0].Data.String()
		want := f.Children[1].Data.Bytes()
		for _, v := range values(attrs, name) {
			if strings.EqualFold(name, "userCertificate") || strings.HasSuffix(strings.ToLower(name), ";binary") {
				if bytes.Equal(v, want) {
					return true
				}
			} else if strings.EqualFold(string(v), string(want)) {
				return true
			}
		}
	}
	return false
}

func values(attrs map[string][][]byte, name string) [][]byte {
	name = strings.TrimSuffix(strings.ToLower(name), ";binary")
	for k, v := range attrs {
		if strings.ToLower(k) == name {
			return v
		}
	}
	return nil
}

// describe renders a filter for Filters, with values in hex.
func describe(f *ber.Packet) string {
	switch f.Tag {
	case filterAnd, filterOr, filterNot:
		var b strings.Builder
		b.WriteString("(" + [...]string{"&", "|", "!"}[f.Tag])
		for _, c := range f.Children {
			b.WriteString(describe(c))
		}
		return b.String() + ")"
	case filterPresent:
		return "(" + f.Data.String() + "=*)"
	case filterEqualityMatch:
		if len(f.Children) == 2 {
			return fmt.Sprintf("(%s=%x)", f.Children[0].Data.String(), f.Children[1].Data.Bytes())
		}
	}
	return fmt.Sprintf("(?%d)", f.Tag)
}

func entryPacket(dn string, attrs map[string][][]byte, wanted []string) *ber.Packet {
	e := ber.Encode(ber.ClassApplication, ber.TypeConstructed, opSearchResultEntry, nil, "entry")
	e.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, dn, "dn"))
	list := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "attributes")
	for name, vals := range attrs {
		if len(wanted) > 0 && !containsFold(wanted, name) {
			continue
		}
		a := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "attribute")
		a.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, name, "type"))
		set := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "values")
		for _, v := range vals {
			set.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, string(v), "value"))
		}
		a.AppendChild(set)
		list.AppendChild(a)
	}
	e.AppendChild(list)
	return e
}

func containsFold(list []string, s string) bool {
	for _, l := range list {
		if strings.EqualFold(l, s) {
			return true
		}
	}
	return false
}

func result(op ber.Tag, code int64, msg string) *ber.Packet {
	r := ber.Encode(ber.ClassApplication, ber.TypeConstructed, op, nil, "result")
	r.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, code, "resultCode"))
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "matchedDN"))
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, msg, "diagnosticMessage"))
	return r
}

func write(w io.Writer, id int64, op *ber.Packet) error {
	env := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAPMessage")
	env.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "messageID"))
	env.AppendChild(op)
	_, err := w.Write(env.Bytes())
	if err != nil {
		return errors.Join(errors.New("ldaptest: write"), err)
	}
	return nil
}
