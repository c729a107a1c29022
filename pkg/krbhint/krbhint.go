package krbhint

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
)

// Stage names the exchange of ticket issuance a KDC answered in. pkg/s4u's
// Stage is this type.
type Stage string

// Stages of obtaining a ticket.
const (
	// StageASReq is the service account's AS exchange for its TGT.
	StageASReq Stage = "as-req"
	// StageReferral is a TGS exchange for a cross-realm TGT, or the
	// S4U2Self referral leg in the user's realm.
	StageReferral Stage = "referral"
	// StageS4U2Self is protocol transition: a ticket to the service account
	// for the user.
	StageS4U2Self Stage = "s4u2self"
	// StageS4U2Proxy is constrained delegation: a ticket to the target SPN
	// for the user.
	StageS4U2Proxy Stage = "s4u2proxy"
	// StageRenew is the renewal of a service ticket (TGS with RENEW).
	StageRenew Stage = "renew"
	// StageRenewTGT is the renewal of the service account's TGT.
	StageRenewTGT Stage = "renew-tgt"
)

// Class is what a code means to a caller deciding how to answer: the ticket
// role maps it to a gRPC code.
type Class int

// Classes of Kerberos failures.
const (
	// ClassUnknown is a code the catalogue does not describe.
	ClassUnknown Class = iota
	// ClassNotFound: the KDC does not know the user.
	ClassNotFound
	// ClassSetup: a setting of the gateway or of Active Directory must change.
	ClassSetup
	// ClassRefused: Active Directory refuses this user or this delegation.
	ClassRefused
	// ClassCrypto: the gateway and the KDC disagree on keys or checksums.
	ClassCrypto
	// ClassUnavailable: the KDC cannot serve now (clock skew, overload).
	ClassUnavailable
)

// Params fills the fix's examples with the configured names; empty fields
// keep the placeholders SVC and HTTP/host.
type Params struct {
	// Account is the service account's user name (kcd.serviceAccountUserName).
	Account string
	// SPN is the target SPN (kcd.targetSPN).
	SPN string
}

// Entry describes one Kerberos error code.
type Entry struct {
	// Code is the Kerberos error code (RFC 4120 section 7.5.9).
	Code int32
	// Meaning says in a few words what the code means for a KCD gateway.
	Meaning string
	// Class is what the code means to a caller.
	Class Class
	// Temporary reports that retrying later may succeed.
	Temporary bool
	// Fix is the administrator's fix at any stage not in At.
	Fix string
	// At holds the fix at stages where the cause differs.
	At map[Stage]string
}

// Name returns the entry's RFC name, e.g. KDC_ERR_BADOPTION.
func (e Entry) Name() string { return Name(e.Code) }

// FixAt returns the administrator's fix at a stage, with Params' names.
func (e Entry) FixAt(stage Stage, p Params) string {
	f, ok := e.At[stage]
	if !ok {
		f = e.Fix
	}
	return p.fill(f)
}

func (p Params) fill(s string) string {
	account, spn := p.Account, p.SPN
	if account == "" {
		account = "SVC"
	}
	if spn == "" {
		spn = "HTTP/host"
	}
	return strings.NewReplacer("{{account}}", account, "{{spn}}", spn).Replace(s)
}

// Lookup returns the catalogue's entry for a code.
func Lookup(code int32) (Entry, bool) {
	for _, e := range catalogue {
		if e.Code == code {
			return e, true
		}
	}
	return Entry{}, false
}

// Entries returns every entry, ordered by code.
func Entries() []Entry {
	out := slices.Clone(catalogue)
	sort.Slice(out, func(i, j int) bool { return out[i].Code < out[j].Code })
	return out
}

// Fix returns the administrator's fix for a code met at a stage, with the
// placeholders SVC and HTTP/host in its examples, or "" for a code the
// catalogue does not describe.
func Fix(stage Stage, code int32) string {
	return FixFor(stage, code, Params{})
}

// FixFor is Fix with the configured service account and SPN in the examples.
func FixFor(stage Stage, code int32, p Params) string {
	e, ok := Lookup(code)
	if !ok {
		return ""
	}
	return e.FixAt(stage, p)
}

// Describe returns "NAME: meaning" for a code, the way the status page lists
// it, or just the name for a code the catalogue does not describe.
func Describe(code int32) string {
	e, ok := Lookup(code)
	if !ok {
		return Name(code)
	}
	return e.Name() + ": " + e.Meaning
}

// ClassOf returns a code's class; ClassUnknown when it is not described.
func ClassOf(code int32) Class {
	e, _ := Lookup(code)
	return e.Class
}

// Temporary reports whether retrying later may succeed after a code.
func Temporary(code int32) bool {
	e, _ := Lookup(code)
	return e.Temporary
}

// Name returns the RFC 4120 name of a Kerberos error code, such as
// KDC_ERR_BADOPTION, or "KRB_ERROR_<code>" for an unknown code.
func Name(code int32) string {
	// errorcode.Lookup gives "(13) KDC_ERR_BADOPTION KDC cannot ...".
	f := strings.Fields(errorcode.Lookup(code))
	if len(f) >= 2 && strings.HasPrefix(f[0], "(") && strings.Contains(f[1], "_") {
		return f[1]
	}
	return fmt.Sprintf("KRB_ERROR_%d", code)
}

// NotForwardable is the fix for a KDC_ERR_BADOPTION refusal of S4U2Proxy
// whose evidence (the S4U2Self ticket) was not forwardable: no delegation
// setting on the target helps, the service account's protocol transition or
// the user's delegation flag does.
func NotForwardable(p Params) string { return p.fill(notForwardable) }

// SessionKeyEtype is the fix when a KDC answers with a session key of an
// etype the request did not offer (s4u.SessionKeyError): not a Kerberos
// error code, a reply the gateway refuses.
func SessionKeyEtype(p Params) string { return p.fill(sessionKeyEtype) }

// NormalStep reports whether a code met at a stage is a normal step of
// the exchange rather than a failure: KDC_ERR_PREAUTH_REQUIRED (25) at the
// AS exchange, the KDC's answer to the first request of every TGT (it
// names the etype and salt for the pre-authentication). Metrics and logs
// count it apart from errors.
func NormalStep(stage Stage, code int32) bool {
	return stage == StageASReq && code == errorcode.KDC_ERR_PREAUTH_REQUIRED
}
