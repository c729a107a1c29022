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
	"github.com/segmesh/segmesh/pkg/s4u"
	"github.com/segmesh/segmesh/pkg/trust"
	"github.com/segmesh/segmesh/pkg/upn"
)

// The fixes, in the words of SEG's documentation where it has them.
const (
	fixAltSecID   = `the UPN in the certificate does not match a user in Active Directory: configure the intended UPN as the Kerberos Principal Name under Security Identity Mapping (altSecurityIdentities) of the user: Set-ADUser -Identity $ADUsername -Add @{'altSecurityIdentities'="Kerberos:USERNAME@DOMAIN.NAME"}; or enable client certificate mapping (cert.mapping.enabled) and publish the certificate to the user object`
	fixPublish    = "publish the client authentication certificate generated from the CA server to the respective user object in Active Directory (userCertificate), and enable Attribute Indexing for userCertificate and Replication to Global Catalog (Active Directory Schema snap-in: Index this attribute, Replicate this attribute to the Global Catalog)"
	fixBind       = "cert.mapping.ldap.user must be the Distinguished Name (DN) of the Kerberos service user account, for example CN=servKCD,CN=Users,DC=memldap,DC=org, and SEG uses the same service account credential that is configured as part of the Kerberos authentication settings (kcd.serviceAccountPassword); the service account user must have the permissions to fetch the user details through the LDAP query"
	fixCRLHTTP    = "SEG requires that the client certificate CRLs are reachable over HTTP; by default, Microsoft CAs are configured for accessing the CRL over LDAP and not HTTP: publish the CRL over HTTP (install the AD CS role service Certification Authority Web Enrollment), make the distribution point reachable from the gateway and list its URL in " + config.KeyCRLURIs
	fixTrustStore = "combine the root and intermediate certificates of the issuing CA and add them to clientCertTrustStorePath (PEM files separated by commas, or one password-protected PFX; both formats cannot be used together); the certificate chain of trust is provided in the configuration and is not stored in the Microsoft Management Console"
	fixDC         = "check that each domain controller is reachable on port 88 (Kerberos) from the gateway; the domain controller needs to be explicitly provided as the Fully Qualified Domain Name (FQDN), for example DC.DOMAIN-NAME.COM, and the domain must be entered in uppercase, for example DOMAIN-NAME.COM"
	fixSvc        = "a Service Account must be used (kcd.serviceAccountUserName, for example SVC_awseg, with its password in kcd.serviceAccountPassword), regardless of SEG being joined to the domain; using the computer account for Kerberos and impersonation is not supported"
	fixDelegSPN   = "allow the service account to delegate to the target SPN %[1]s by either kind of constrained delegation: classic, add %[1]s to its msDS-AllowedToDelegateTo with \"Use any authentication protocol\" (Delegation tab: Trust this user for delegation to specified services only; Samba: samba-tool delegation add-service %[2]s %[1]s); or resource-based (RBCD), name the service account in msDS-AllowedToActOnBehalfOfOtherIdentity on the account that holds %[1]s (Set-ADComputer EXCHANGE -PrincipalsAllowedToDelegateToAccount %[2]s; Samba 4.19+: samba-tool delegation add-principal 'EXCHANGE$' %[2]s); and check kcd.targetSPN is in HTTP/{exchangeName} format and spelled as registered on Exchange (setspn -Q %[1]s)"
	fixSensitive  = `the S4U2Self ticket is not forwardable, so the KDC will not delegate it whatever the target allows: the service account is not trusted for protocol transition (its delegation is "Use Kerberos only": choose "Use any authentication protocol", TrustedToAuthForDelegation; Samba: samba-tool delegation for-any-protocol ACCOUNT on), or the user is marked "Account is sensitive and cannot be delegated" or is in Protected Users (clear it for mail users)`
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
	switch {
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
// one.
func fixKDC(st *state, err error) (cause, fix, code string, ok bool) {
	var ke *s4u.KDCError
	var ue *kdc.UnreachableError
	var wc *s4u.WrongClientError
	switch {
	case errors.As(err, &ue), errors.Is(err, context.DeadlineExceeded):
		return err.Error(), "no domain controller answered: " + fixDC, "kdc_unreachable", true
	case errors.Is(err, kdc.ErrUnknownRealm):
		return err.Error(), "add the user's domain and its domain controller to kcd.domains: " + fixDC, "unknown_realm", true
	case errors.As(err, &wc):
		return err.Error(), "the KDC did not apply S4U: turn on protocol transition (Use any authentication protocol) and constrained delegation on the service account; " + fixSvc, "wrong_client", true
	case !errors.As(err, &ke):
		var ne net.Error
		if errors.As(err, &ne) {
			return err.Error(), fixDC, "kdc_unreachable", true
		}
		return "", "", "", false
	}
	// The KDCError's own text ends with its hint; the fix says it better.
	cause = fmt.Sprintf("the KDC %s of realm %s answered %s (%d) at %s", ke.KDC, ke.Realm, ke.Name, ke.Code, ke.Stage)
	if ke.EText != "" {
		cause += ": " + ke.EText
	}
	code = ke.Name
	switch ke.Code {
	case errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN:
		if ke.Stage == s4u.StageASReq {
			return cause, "the KDC does not know the service account: check kcd.serviceAccountUserName (the sAMAccountName, without the domain) and that kcd.domains[0] is its domain, in uppercase; " + fixSvc, code, true
		}
		return cause, fixAltSecID, code, true
	case errorcode.KDC_ERR_PREAUTH_FAILED, errorcode.KRB_AP_ERR_BAD_INTEGRITY:
		return cause, "the service account password is wrong: type it again in kcd.serviceAccountPassword with the suffix .plaintext (it is encrypted at the next start); " + fixSvc, code, true
	case errorcode.KDC_ERR_WRONG_REALM:
		return cause, "the realm is wrong: the domain name is case-sensitive and must be entered in uppercase, for example DOMAIN-NAME.COM; " + fixDC, code, true
	case errorcode.KDC_ERR_BADOPTION:
		switch {
		case ke.Stage == s4u.StageS4U2Proxy && st.self != nil && !st.self.Forwardable():
			return cause, fixSensitive, code, true
		case ke.Stage == s4u.StageS4U2Proxy:
			return cause, fmt.Sprintf(fixDelegSPN, st.spn, st.cfg.KCD.ServiceAccountUserName) + `; if the user is marked "Account is sensitive and cannot be delegated" or is in Protected Users, clear that`, code, true
		}
	case errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN:
		if ke.Stage == s4u.StageS4U2Proxy {
			return cause, fmt.Sprintf("the target SPN %s is not registered: register it on the Exchange account (setspn -S %s <exchange account>) and write kcd.targetSPN in HTTP/{exchangeName} format", st.spn, st.spn), code, true
		}
	case errorcode.KDC_ERR_POLICY:
		if ke.Stage == s4u.StageS4U2Self {
			return cause, "the KDC refused the user by policy: the user's account is disabled, locked out or expired in Active Directory (Samba answers 12 for a disabled account), or logon hours, allowed workstations or an authentication policy restrict it: enable or unlock the account", code, true
		}
	case errorcode.KDC_ERR_CLIENT_REVOKED:
		if ke.Stage != s4u.StageASReq {
			return cause, "the user's account is disabled, locked out or expired in Active Directory: enable or unlock it", code, true
		}
	}
	fix = ke.Hint
	if fix == "" {
		fix = "see the KDC's event log for this request; " + fixDC
	}
	return cause, fix, code, true
}

func fixTGT(st *state, err error) (string, string, string) {
	if c, f, code, ok := fixKDC(st, err); ok {
		return c, f, code
	}
	return err.Error(), fixSvc + "; " + fixDC, "tgt"
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
	return err.Error(), fixAltSecID, "s4u2self"
}

func fixS4U2Proxy(st *state, err error) (string, string, string) {
	if c, f, code, ok := fixKDC(st, err); ok {
		return c, f, code
	}
	return err.Error(), fmt.Sprintf(fixDelegSPN, st.spn, st.cfg.KCD.ServiceAccountUserName), "s4u2proxy"
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
