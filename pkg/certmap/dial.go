package certmap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// dial connects to the URL's host, or to the first Global Catalog found
// in DNS that answers (failover), and binds. A refused bind stops the
// failover: another server would refuse it too.
func (m *Mapper) dial(ctx context.Context) (*ldap.Conn, error) {
	// Credentials the directory refused lately are not presented again:
	// each refused bind counts towards the account's lockout, and every
	// lookup finding no bound connection would bind (a password changed
	// in AD under a running mapping locked the account out in seconds).
	if err := m.refused.Lately(); err != nil {
		return nil, err
	}
	targets, err := m.dialTargets(ctx)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, t := range targets {
		conn, err := m.dialOne(ctx, t)
		if err == nil {
			m.gcAnswered(t)
		}
		var be *BindError
		if errors.As(err, &be) && be.CredentialsRefused() {
			m.refused.Note(err)
		}
		if err == nil || be != nil || ctx.Err() != nil {
			return conn, err
		}
		errs = append(errs, err)
	}
	m.gcFailed()
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, &DirectoryError{Op: "dial", Endpoint: m.ep.String(), Err: errors.Join(errs...),
		Hint: "no Global Catalog found in DNS answered: check that they are up and reachable"}
}

// dialOne connects to one server, starts TLS as configured and binds as the
// service account.
func (m *Mapper) dialOne(ctx context.Context, t dialTarget) (*ldap.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.DialTimeout)
	defer cancel()
	raw, err := m.cfg.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, &DirectoryError{Op: "dial", Endpoint: m.ep.String(), Err: err,
			Hint: "check cert.mapping.ldap.url and that the directory is up"}
	}
	if m.ep.TLS {
		tc := tls.Client(raw, m.tlsFor(t))
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			return nil, &DirectoryError{Op: "TLS handshake with", Endpoint: m.ep.String(), Err: err, Hint: tlsHint(err)}
		}
		raw = tc
	}
	conn := ldap.NewConn(raw, m.ep.TLS)
	conn.Start()
	conn.SetTimeout(m.cfg.DialTimeout)
	err = runWithContext(ctx, conn, func(conn *ldap.Conn) error {
		if m.cfg.StartTLS {
			if err := conn.StartTLS(m.tlsFor(t)); err != nil {
				return &DirectoryError{Op: "StartTLS with", Endpoint: m.ep.String(), Err: err, Hint: tlsHint(err)}
			}
		}
		if err := conn.Bind(m.cfg.BindDN, m.cfg.Password.Reveal()); err != nil {
			var le *ldap.Error
			be := &BindError{BindDN: m.cfg.BindDN, Err: err}
			if errors.As(err, &le) && le.ResultCode < ldap.ErrorNetwork {
				be.Code = le.ResultCode
			} else if isConnBroken(err, conn) {
				return &DirectoryError{Op: "bind to", Endpoint: m.ep.String(), Err: err,
					Hint: "check that the directory is up"}
			}
			return be
		}
		return nil
	})
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	conn.SetTimeout(m.cfg.OpTimeout)
	return conn, nil
}

func tlsHint(err error) string {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	// go-ldap's StartTLS flattens the handshake error to text.
	msg := err.Error()
	switch {
	case errors.As(err, &unknown), strings.Contains(msg, "unknown authority"):
		return "the directory's certificate is not signed by a configured CA: set the LDAP CA file to the CA that issued it"
	case errors.As(err, &host), strings.Contains(msg, "certificate is valid for"), strings.Contains(msg, "certificate is not valid for"):
		return "the directory's certificate does not name the URL's host: use the host name the certificate carries"
	}
	return "check the directory's TLS certificate and the LDAP CA file"
}

// wrap makes sure an error leaving Map carries the package prefix and a type
// callers can branch on.
func (m *Mapper) wrap(op string, err error) error {
	var de *DirectoryError
	var be *BindError
	if errors.As(err, &de) || errors.As(err, &be) {
		return err
	}
	hint := ""
	// go-ldap reports its own request timeout as a network error with text only.
	if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "timed out") {
		hint = fmt.Sprintf("the directory did not answer in time; if it is slow, %s", hintIndex)
	}
	return &DirectoryError{Op: op, Endpoint: m.ep.String(), Err: err, Hint: hint}
}
