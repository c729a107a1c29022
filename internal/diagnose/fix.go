package diagnose

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"

	"github.com/segmesh/segmesh/pkg/certmap"
	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/crl"
	"github.com/segmesh/segmesh/pkg/kdc"
	"github.com/segmesh/segmesh/pkg/krbhint"
	"github.com/segmesh/segmesh/pkg/s4u"
	"github.com/segmesh/segmesh/pkg/trust"
	"github.com/segmesh/segmesh/pkg/upn"
)

// The fixes, in the words of SEG's documentation where it has them.
const (
	fixPublish    = "publish the client authentication certificate generated from the CA server to the respective user object in Active Directory (userCertificate), and enable Attribute Indexing for userCertificate and Replication to Global Catalog (Active Directory Schema snap-in: Index this attribute, Replicate this attribute to the Global Catalog)"
	fixBind       = "cert.mapping.ldap.user must be the Distinguished Name (DN) of the Kerberos service user account, for example CN=servKCD,CN=Users,DC=memldap,DC=org, and SEG uses the same service account credential that is configured as part of the Kerberos authentication settings (kcd.serviceAccountPassword); the service account user must have the permissions to fetch the user details through the LDAP query"
	fixCRLHTTP    = "SEG requires that the client certificate CRLs are reachable over HTTP; by default, Microsoft CAs are configured for accessing the CRL over LDAP and not HTTP: publish the CRL over HTTP (install the AD CS role service Certification Authority Web Enrollment), make the distribution point reachable from the gateway and list its URL in " + config.KeyCRLURIs
	fixTrustStore = "combine the root and intermediate certificates of the issuing CA and add them to clientCertTrustStorePath (PEM files separated by commas, or one password-protected PFX; both formats cannot be used together); the certificate chain of trust is provided in the configuration and is not stored in the Microsoft Management Console"
)

func fixCertificate(_ *state, err error) (string, string, string) {
	var km *keyMismatchError
	if errors.As(err, &km) {
		return err.Error(), "give the key that belongs to the certificate, or leave --key out", "key_mismatch"
	}
	return err.Error(), "give the device's client certificate as PEM (.pem, .cer) or DER, as the CA issued it", "malformed_certificate"
}

func fixTrust(_ *state, err error) (string, string, string) {
	var ve *trust.VerifyError
	var tp *trust.Problem
	switch {
	case errors.As(err, &ve):
		switch ve.Reason {
		case trust.ReasonUnknownAuthority:
			return err.Error(), "the certificate's issuer is not trusted: " + fixTrustStore, ve.Reason.String()
		case trust.ReasonNoTrust:
			return err.Error(), "no trust store is configured: " + fixTrustStore, ve.Reason.String()
		case trust.ReasonExpired, trust.ReasonNotYetValid:
			return err.Error(), "issue the device a new certificate (Credentials payload of the device profile), or correct the gateway's clock", ve.Reason.String()
		case trust.ReasonWrongUsage:
			return err.Error(), "issue client certificates from a template with the Client Authentication extended key usage", ve.Reason.String()
		}
		return err.Error(), fixTrustStore, ve.Reason.String()
	case errors.As(err, &tp):
		fix := tp.Fix
		if fix == "" {
			fix = fixTrustStore
		}
		return err.Error(), fix, "trust_store"
	}
	return err.Error(), fixTrustStore, "trust_store"
}

func fixRevocation(_ *state, err error) (string, string, string) {
	var re *revokedError
	if errors.As(err, &re) {
		return err.Error(), "the CA revoked this certificate: issue the device a new certificate (re-publish the device profile's Credentials payload); if it was revoked by mistake, unrevoke it on the CA and publish a new CRL", "revoked"
	}
	var se *staleError
	if errors.As(err, &se) {
		return err.Error(), "publish a new CRL on the CA (certutil -crl) and check the CA's CRL publication schedule", "crl_stale"
	}
	var ue *unknownIssuerError
	if errors.As(err, &ue) && ue.uncovered {
		return err.Error(), "add the URL of the CRL partition this certificate names in its CRL distribution points to " + config.KeyCRLURIs + " (or turn on segmesh.crl.useCertificateCdps to fetch it from the certificate)", "crl_unknown_issuer"
	}
	if errors.As(err, &ue) {
		return err.Error(), "add the issuer's HTTP CRL URL to " + config.KeyCRLURIs + ", or issue certificates whose CRL distribution point is an http:// URL the gateway can reach", "crl_unknown_issuer"
	}
	var ce *crl.Error
	if errors.As(err, &ce) {
		switch ce.Kind {
		case crl.KindFetch, crl.KindTooLarge:
			return err.Error(), fixCRLHTTP, "cdp_unreachable"
		case crl.KindUntrusted, crl.KindSignature:
			return err.Error(), "the CRL is not signed by a trusted CA: add the CRL issuer's CA certificate to clientCertTrustStorePath, or correct the URL in " + config.KeyCRLURIs, "crl_untrusted"
		case crl.KindUnsupported:
			return err.Error(), "list the base CRL (not a delta CRL) of each issuing CA in " + config.KeyCRLURIs, "crl_unsupported"
		case crl.KindPanic:
			// Not the CRL's fault as far as anyone knows: segmesh's own
			// code failed on it, and checking what the URL serves would
			// send the admin the wrong way. Diagnose's own check of the
			// CRL (checkCRL) runs the crl role's code, so the role's log
			// holds the same panic with its stack.
			return err.Error(), "segmesh's own code failed on this CRL (a panic; the crl role, which fetches and checks it with the same code, keeps its last good CRL in force): find the \"crl fetch caused a panic\" or \"crl commit caused a panic\" line with its stack in the crl role's log and report it, with the CRL the URL serves, to segmesh's maintainers", "crl_panic"
		}
		return err.Error(), "check that the URL serves the CA's CRL (DER or PEM): " + fixCRLHTTP, "crl_malformed"
	}
	return err.Error(), fixCRLHTTP, "cdp_unreachable"
}

func fixMapping(st *state, err error) (string, string, string) {
	var be *certmap.BindError
	var de *certmap.DirectoryError
	var nf *certmap.NotFoundError
	var amb *certmap.AmbiguousError
	var re *certmap.RefusedError
	switch {
	case errors.As(err, &re) && re.Setting == certmap.KeyLoginIdentity && !re.Unavailable:
		return err.Error(), re.Reason, "login_identity"
	case errors.As(err, &be):
		return err.Error(), fixBind, "ldap_bind"
	case errors.As(err, &de):
		return err.Error(), "the directory could not be asked: check " + config.KeyCertMappingLDAPURL + " (protocol://host:port/dc=whatever, for example ldaps://ldap-remote:3269), that the host is reachable and its TLS certificate trusted (segmesh.identity.ldapCaFile); enable LDAP over TLS (LDAPS), and the Global Catalog port 3269 may perform better with userCertificate indexed and replicated", "ldap_unavailable"
	case errors.As(err, &amb):
		return err.Error(), "keep the certificate (or the altSecurityIdentities name) on exactly one user object", "ambiguous"
	case errors.Is(err, upn.ErrNoUPN) && st.cfg.MappingHonoured():
		return err.Error(), "no user holds the certificate and it has no UPN: " + fixPublish, "not_mapped"
	case errors.Is(err, upn.ErrNoUPN):
		return err.Error(), "the certificate has no user principal name and certificate mapping is off: enable client certificate mapping (cert.mapping.enabled with cert.mapping.ldap.url and cert.mapping.ldap.user) and " + fixPublish + "; or issue certificates with the UPN in the SAN", "no_upn"
	case errors.As(err, &nf):
		return err.Error(), fixPublish, "not_mapped"
	}
	return err.Error(), "check the certificate's SAN UPN and " + fixPublish, "mapping"
}

// fixKDC explains a KDC failure at any stage; ok is false when err is not
// one. The fix is pkg/krbhint's, with the configured SPN and service account
// in its examples.
func fixKDC(st *state, err error) (cause, fix, code string, ok bool) {
	var ke *s4u.KDCError
	var ue *kdc.UnreachableError
	var wc *s4u.WrongClientError
	var se *s4u.SessionKeyError
	switch {
	case errors.As(err, &ue), errors.Is(err, context.DeadlineExceeded):
		return err.Error(), "no domain controller answered: " + krbhint.FixDomainControllers, "kdc_unreachable", true
	case errors.Is(err, kdc.ErrUnknownRealm):
		return err.Error(), "add the user's domain and its domain controller to kcd.domains: " + krbhint.FixDomainControllers, "unknown_realm", true
	case errors.As(err, &wc):
		return err.Error(), krbhint.FixWrongClient, "wrong_client", true
	case errors.As(err, &se):
		return err.Error(), krbhint.SessionKeyEtype(st.hintParams()), "session_key_etype", true
	case !errors.As(err, &ke):
		var ne net.Error
		if errors.As(err, &ne) {
			return err.Error(), krbhint.FixDomainControllers, "kdc_unreachable", true
		}
		return "", "", "", false
	}
	// The KDCError's own text ends with its hint; the fix says it again.
	cause = fmt.Sprintf("the KDC %s of realm %s answered %s (%d) at %s", ke.KDC, ke.Realm, ke.Name, ke.Code, ke.Stage)
	if ke.NTStatus != 0 {
		cause += fmt.Sprintf(" with NTSTATUS %#08x", ke.NTStatus)
	}
	if ke.EText != "" {
		cause += ": " + ke.EText
	}
	p := st.hintParams()
	switch {
	case ke.NotForwardable || ke.Stage == s4u.StageS4U2Proxy && ke.Code == errorcode.KDC_ERR_BADOPTION && st.self != nil && !st.self.Forwardable():
		fix = krbhint.NotForwardable(p)
	default:
		fix = krbhint.FixFor(ke.Stage, ke.Code, p)
	}
	if fix == "" {
		fix = "see the KDC's event log for this request; " + krbhint.FixDomainControllers
	}
	return cause, fix, ke.Name, true
}

// hintParams names the configured service account and target SPN for the
// catalogue's examples.
func (st *state) hintParams() krbhint.Params {
	return krbhint.Params{Account: st.cfg.KCD.ServiceAccountUserName, SPN: st.spn}
}

func fixTGT(st *state, err error) (string, string, string) {
	if c, f, code, ok := fixKDC(st, err); ok {
		return c, f, code
	}
	return err.Error(), krbhint.FixServiceAccount + "; " + krbhint.FixDomainControllers, "tgt"
}

func fixS4U2Self(st *state, err error) (string, string, string) {
	var ke *s4u.KDCError
	if st.suffixUnmapped && errors.As(err, &ke) && ke.Code == errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN {
		// The suffix is no configured domain: the primary realm's KDC was
		// asked for the enterprise name; pkg/s4u's hint names the suffix,
		// what was tried and the settings.
		c, _, code, _ := fixKDC(st, err)
		return c, ke.Hint, code
	}
	if c, f, code, ok := fixKDC(st, err); ok {
		return c, f, code
	}
	return err.Error(), krbhint.FixFor(s4u.StageS4U2Self, errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, st.hintParams()), "s4u2self"
}

func fixS4U2Proxy(st *state, err error) (string, string, string) {
	if c, f, code, ok := fixKDC(st, err); ok {
		return c, f, code
	}
	return err.Error(), krbhint.FixFor(s4u.StageS4U2Proxy, errorcode.KDC_ERR_BADOPTION, st.hintParams()), "s4u2proxy"
}

func fixExchange(st *state, err error) (string, string, string) {
	var he *httpStatusError
	switch {
	case errors.Is(err, errNoUpstream):
		return err.Error(), "list the Exchange URL(s) in segmesh.edge.exchangeUrls, for example https://mail.corp.example", "no_upstream"
	case errors.As(err, &he) && he.status == 401:
		return err.Error(), fmt.Sprintf("Exchange refused the Kerberos ticket: check that %s is the SPN registered on the Exchange (or load balancer) account for this host name, that Negotiate (Kerberos) authentication is enabled on /Microsoft-Server-ActiveSync, and that the gateway's clock is within 5 minutes of the domain's", st.spn), "http_401"
	case errors.As(err, &he) && he.status == 403:
		return err.Error(), "Exchange knows the user but refuses it: check the user's mailbox has ActiveSync enabled", "http_403"
	case errors.As(err, &he):
		return err.Error(), "Exchange answered an error: check its event log and that segmesh.edge.exchangeUrls points at the Exchange (or load balancer) serving /Microsoft-Server-ActiveSync", fmt.Sprintf("http_%d", he.status)
	}
	return err.Error(), "Exchange could not be reached: check segmesh.edge.exchangeUrls, that Exchange is reachable from the gateway, and its certificate is trusted (segmesh.edge.exchangeCaFile)", "exchange_unreachable"
}
