package s4u

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"

	"github.com/segmesh/segmesh/pkg/kdc"
)

// Stage names the exchange a failure happened in.
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
)

// UnreachableError reports that no KDC of a realm answered; it is
// temporary (retryable).
type UnreachableError = kdc.UnreachableError

// KDCError is a KRB-ERROR a KDC answered with, with the stage it answered
// and a hint for the administrator.
type KDCError struct {
	// Code is the Kerberos error code (RFC 4120 section 7.5.9).
	Code int32
	// Name is the code's RFC name, e.g. KDC_ERR_BADOPTION.
	Name string
	// Hint says in an administrator's words what usually causes the code at
	// this stage and how to fix it; empty when there is no specific advice.
	Hint string
	// Stage is the exchange that failed.
	Stage Stage
	// Realm is the realm whose KDC answered.
	Realm string
	// KDC is the address of the KDC that answered.
	KDC string
	// EText is the KDC's own text, if any.
	EText string
	// NotForwardable is set on an S4U2Proxy refusal whose evidence (the
	// S4U2Self ticket) was not forwardable: protocol transition is off for
	// the service account, or the user cannot be delegated (HintNotForwardable).
	NotForwardable bool

	err *kdc.KRBError
}

// Error returns the stage, realm, code, name and hint.
func (e *KDCError) Error() string {
	s := fmt.Sprintf("s4u: %s in realm %s: %s (%d)", e.Stage, e.Realm, e.Name, e.Code)
	if e.EText != "" {
		s += " [" + e.EText + "]"
	}
	if e.Hint != "" {
		s += ": " + e.Hint
	}
	return s
}

// Unwrap returns the transport's *kdc.KRBError.
func (e *KDCError) Unwrap() error {
	if e.err == nil {
		return nil
	}
	return e.err
}

// Is reports whether target is a *KDCError with the same code (or code 0)
// and the same stage (or no stage), so errors.Is(err, &KDCError{Code: 6})
// matches any C_PRINCIPAL_UNKNOWN.
func (e *KDCError) Is(target error) bool {
	t, ok := target.(*KDCError)
	if !ok {
		return false
	}
	return (t.Code == 0 || t.Code == e.Code) && (t.Stage == "" || t.Stage == e.Stage)
}

// Temporary reports whether retrying later may succeed. KDC answers such as
// C_PRINCIPAL_UNKNOWN, BADOPTION or CLIENT_REVOKED are definitive.
func (e *KDCError) Temporary() bool {
	switch e.Code {
	case errorcode.KDC_ERR_SVC_UNAVAILABLE, errorcode.KRB_ERR_RESPONSE_TOO_BIG,
		errorcode.KRB_AP_ERR_TKT_EXPIRED, errorcode.KRB_ERR_GENERIC:
		return true
	}
	return false
}

// ErrWrongClient is matched (errors.Is) by a *WrongClientError.
var ErrWrongClient = errors.New("s4u: KDC returned a ticket for another client")

// WrongClientError reports a reply whose client is not the user asked for.
// A KDC that does not apply S4U (or applies it partially) silently returns a
// ticket for the service account itself; using it would authenticate every
// user as the service account. It is definitive.
type WrongClientError struct {
	// Stage is the exchange whose reply was refused.
	Stage Stage
	// Want is the client asked for, as name@realm.
	Want string
	// Got is the client in the reply, as name@realm.
	Got string
}

// Error names both clients (principal names are not secrets).
func (e *WrongClientError) Error() string {
	return fmt.Sprintf("s4u: %s reply is for %s, not the user %s: the KDC did not apply S4U (check protocol transition and constrained delegation on the service account)", e.Stage, e.Got, e.Want)
}

// Is matches ErrWrongClient.
func (e *WrongClientError) Is(target error) bool { return target == ErrWrongClient }

// Temporary reports false: the KDC will answer the same way again.
func (e *WrongClientError) Temporary() bool { return false }

// IsTemporary reports whether err (or an error it wraps) says retrying later
// may succeed: an unreachable realm, a context deadline, or a transient KDC
// code. Definitive KDC answers and configuration errors report false.
func IsTemporary(err error) bool {
	var t interface{ Temporary() bool }
	if errors.As(err, &t) {
		return t.Temporary()
	}
	return false
}

// newKDCError converts a transport error into a *KDCError when it is a
// KRB-ERROR, and wraps it with the stage otherwise.
func newKDCError(stage Stage, realm string, err error) error {
	var ke *kdc.KRBError
	if !errors.As(err, &ke) {
		return fmt.Errorf("s4u: %s in realm %s: %w", stage, realm, err)
	}
	code := ke.Code()
	return &KDCError{
		Code:  code,
		Name:  CodeName(code),
		Hint:  Hint(stage, code),
		Stage: stage,
		Realm: ke.Realm,
		KDC:   ke.KDC,
		EText: ke.Msg.EText,
		err:   ke,
	}
}

// CodeName returns the RFC 4120 name of a Kerberos error code, such as
// KDC_ERR_BADOPTION, or "KRB_ERROR_<code>" for an unknown code.
func CodeName(code int32) string {
	// errorcode.Lookup gives "(13) KDC_ERR_BADOPTION KDC cannot ...".
	f := strings.Fields(errorcode.Lookup(code))
	if len(f) >= 2 && strings.HasPrefix(f[0], "(") && strings.Contains(f[1], "_") {
		return f[1]
	}
	return fmt.Sprintf("KRB_ERROR_%d", code)
}

// The two S4U2Proxy refusals (KDC_ERR_BADOPTION) an administrator fixes in
// different places. The KDC answers the same code to both; which one it is
// shows in the S4U2Self ticket sent as evidence: not forwardable means the
// KDC would never delegate it (ServiceTicket and S4U2Proxy pick the hint).
const (
	// HintDelegation: the evidence was forwardable, so neither kind of
	// constrained delegation allows the service account to reach the target.
	HintDelegation = "delegation refused: the service account may delegate to the target SPN by neither kind of constrained delegation. " +
		"Classic: add the SPN to the service account's msDS-AllowedToDelegateTo with \"Use any authentication protocol\" " +
		"(Delegation tab: Trust this user for delegation to specified services only; Set-ADUser SVC -Add @{'msDS-AllowedToDelegateTo'='HTTP/host'}; " +
		"Samba: samba-tool delegation add-service SVC HTTP/host). " +
		"Resource-based (RBCD): name the service account in msDS-AllowedToActOnBehalfOfOtherIdentity on the target's account " +
		"(Set-ADComputer EXCHANGE -PrincipalsAllowedToDelegateToAccount SVC; Samba 4.19+: samba-tool delegation add-principal 'EXCHANGE$' SVC). " +
		"If the user is marked \"Account is sensitive and cannot be delegated\" or is in Protected Users, clear that"
	// HintNotForwardable: the KDC issued the S4U2Self ticket without the
	// forwardable flag, so no delegation setting on the target helps.
	HintNotForwardable = "delegation refused because the S4U2Self ticket is not forwardable: " +
		"the service account is not trusted for protocol transition (its delegation is \"Use Kerberos only\"): choose \"Use any authentication protocol\" " +
		"(TrustedToAuthForDelegation: Set-ADAccountControl SVC -TrustedToAuthForDelegation $true; Samba: samba-tool delegation for-any-protocol SVC on); " +
		"or the user is marked \"Account is sensitive and cannot be delegated\" or is in Protected Users (clear that for mail users)"
)

// Hint returns advice for an administrator for a Kerberos error code met at
// a stage, or "" when there is none.
func Hint(stage Stage, code int32) string {
	switch code {
	case errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN:
		if stage == StageASReq {
			return "the KDC does not know the KCD service account: check the configured service account user name (sAMAccountName) and domain"
		}
		return "the KDC does not know this user: the UPN is not in the directory or differs from the user's AD userPrincipalName; add altSecurityIdentities \"Kerberos:USER@DOMAIN\" to the AD user, or enable certificate mapping (cert.mapping.*) so the certificate maps to the AD account"
	case errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN:
		switch stage {
		case StageS4U2Proxy:
			return "the KDC does not know the target SPN: check that it is registered on the Exchange (or load balancer) account (setspn -Q HTTP/host) and that the configured target SPN is spelled the same"
		case StageReferral:
			return "the KDC has no trust path to the user's domain: check the domain trust and the configured domain list"
		default:
			return "the KDC does not know the service account as a service: protocol transition needs an SPN on the KCD service account (setspn -S HTTP/gateway-host ACCOUNT)"
		}
	case errorcode.KDC_ERR_POLICY:
		if stage == StageRenew {
			return "the KDC does not renew service tickets (Heimdal and so Samba accept only a TGT in a TGS request): the gateway gets a new ticket by S4U2Self and S4U2Proxy instead; nothing to fix"
		}
		return "KDC policy refused the request: check account restrictions (logon hours, allowed workstations) and authentication policies or silos on the service account and the user"
	case errorcode.KDC_ERR_BADOPTION:
		if stage == StageASReq {
			return "the KDC refused the requested TGT options (forwardable, renewable): check the service account is not marked sensitive and cannot be delegated"
		}
		return HintDelegation
	case errorcode.KDC_ERR_ETYPE_NOSUPP:
		return "no common encryption type: enable AES for the service account (msDS-SupportedEncryptionTypes, \"This account supports Kerberos AES 256 bit encryption\") and reset its password so AES keys exist"
	case errorcode.KDC_ERR_CLIENT_REVOKED:
		if stage == StageASReq {
			return "the KCD service account is disabled, locked out or expired: enable or unlock it in AD"
		}
		return "the user's account is disabled, locked out or expired in AD"
	case errorcode.KDC_ERR_KEY_EXPIRED:
		return "the service account's password has expired: set a new one in AD and in the gateway configuration"
	case errorcode.KDC_ERR_PREAUTH_FAILED, errorcode.KDC_ERR_PREAUTH_REQUIRED:
		return "pre-authentication failed: the KCD service account password is wrong (or the account is locked out); update the password in the gateway configuration"
	case errorcode.KDC_ERR_SVC_UNAVAILABLE:
		return "the KDC is temporarily unavailable; the request may be retried"
	case errorcode.KRB_AP_ERR_BAD_INTEGRITY:
		return "integrity check failed: the TGT no longer matches the KDC's keys (service account password or krbtgt key changed); the gateway gets a new TGT, check the configured password if it persists"
	case errorcode.KRB_AP_ERR_TKT_EXPIRED:
		return "a ticket expired: the gateway renews its TGT ahead of expiry; if this persists check the gateway's clock"
	case errorcode.KRB_AP_ERR_BADMATCH:
		return "the ticket and the request do not match: S4U2Self must name the service account itself; check the configured service account is the account the password belongs to"
	case errorcode.KRB_AP_ERR_SKEW:
		return "clock skew too great (more than 5 minutes) between the gateway and the domain controller: synchronise time (NTP) on both"
	case errorcode.KRB_AP_ERR_MODIFIED:
		return "the KDC rejected a checksum or could not decrypt: the PA-FOR-USER checksum type must match the TGT session key (AES keys need HMAC-SHA1-96-AES; Windows Server 2025 refuses HMAC-MD5 with AES), or the service account password changed"
	case errorcode.KRB_AP_ERR_INAPP_CKSUM:
		return "inappropriate checksum type: the KDC refused the checksum type chosen for the session key; check the service account's msDS-SupportedEncryptionTypes"
	case errorcode.KDC_ERR_WRONG_REALM:
		return "the user belongs to another realm: add its domain and domain controller to the KCD configuration"
	}
	return ""
}
