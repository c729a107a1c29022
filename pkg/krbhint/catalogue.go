package krbhint

import "github.com/jcmturner/gokrb5/v8/iana/errorcode"

// Advice that is not one code's: a caller adds it to its own explanation.
const (
	// FixDomainControllers is the fix when no domain controller answers, or
	// a realm is not configured.
	FixDomainControllers = "check that each domain controller is reachable on port 88 (Kerberos) from the gateway; " +
		"the domain controller needs to be explicitly provided as the Fully Qualified Domain Name (FQDN), for example DC.DOMAIN-NAME.COM, " +
		"and the domain must be entered in uppercase, for example DOMAIN-NAME.COM (kcd.domains)"
	// FixServiceAccount says which account the gateway must use.
	FixServiceAccount = "a Service Account must be used (kcd.serviceAccountUserName, for example SVC_awseg, with its password in kcd.serviceAccountPassword), " +
		"regardless of SEG being joined to the domain; using the computer account for Kerberos and impersonation is not supported"
	// FixWrongClient is the fix when a KDC answers S4U with a ticket for
	// another client (it did not apply S4U).
	FixWrongClient = "the KDC did not apply S4U for this account: turn on protocol transition (\"Use any authentication protocol\", TrustedToAuthForDelegation) " +
		"and constrained delegation to the target SPN (msDS-AllowedToDelegateTo) on the service account; " + FixServiceAccount
)

const (
	fixUnknownUser = `the KDC does not know this user: the UPN in the certificate is not a user in Active Directory or differs from the user's userPrincipalName. ` +
		`Configure the intended UPN as the Kerberos Principal Name under Security Identity Mapping (altSecurityIdentities) of the user: ` +
		`Set-ADUser -Identity $ADUsername -Add @{'altSecurityIdentities'="Kerberos:USERNAME@DOMAIN.NAME"}; ` +
		`or enable client certificate mapping (cert.mapping.enabled with cert.mapping.ldap.url) and publish the certificate to the user object (userCertificate)`
	fixPassword = "the KCD service account password is wrong (or the account is locked out): type it again in kcd.serviceAccountPassword " +
		"with the suffix .plaintext (it is encrypted at the next start)"
	fixDelegation = "delegation refused: the service account may delegate to the target SPN by neither kind of constrained delegation. " +
		"Classic: add the SPN to the service account's msDS-AllowedToDelegateTo with \"Use any authentication protocol\" " +
		"(Delegation tab: Trust this user for delegation to specified services only; Set-ADUser {{account}} -Add @{'msDS-AllowedToDelegateTo'='{{spn}}'}; " +
		"Samba: samba-tool delegation add-service {{account}} {{spn}}). " +
		"Resource-based (RBCD): name the service account in msDS-AllowedToActOnBehalfOfOtherIdentity on the account that holds the SPN " +
		"(Set-ADComputer EXCHANGE -PrincipalsAllowedToDelegateToAccount {{account}}; Samba 4.19+: samba-tool delegation add-principal 'EXCHANGE$' {{account}}). " +
		"Check that kcd.targetSPN is in HTTP/{exchangeName} format and spelled as registered on Exchange (setspn -Q {{spn}}). " +
		"If the user is marked \"Account is sensitive and cannot be delegated\" or is in Protected Users, clear that"
	sessionKeyEtype = "an AD domain controller picks session keys only from the etypes the gateway offers (AES; RC4 only with segmesh.ticket.allowRc4), " +
		"so this KDC ignores the request's list: an old or misconfigured domain controller " +
		"(check DefaultDomainSupportedEncTypes under HKLM\\SYSTEM\\CurrentControlSet\\Services\\KDC, and set msDS-SupportedEncryptionTypes to AES (24) " +
		"on {{account}} and on the account holding {{spn}}, then reset their passwords so AES keys exist), " +
		"or a KDC that should not be there: check the DNS answers for _kerberos._tcp (segmesh.dnsServer) or write kcd.domains[].domainController. " +
		"Only for a legacy domain whose KDCs issue RC4 session keys, set segmesh.ticket.allowRc4 to true"
	notForwardable = "delegation refused because the S4U2Self ticket is not forwardable, so the KDC will not delegate it whatever the target allows: " +
		"the service account is not trusted for protocol transition (its delegation is \"Use Kerberos only\"): choose \"Use any authentication protocol\" " +
		"(TrustedToAuthForDelegation: Set-ADAccountControl {{account}} -TrustedToAuthForDelegation $true; Samba: samba-tool delegation for-any-protocol {{account}} on); " +
		"or the user is marked \"Account is sensitive and cannot be delegated\" or is in Protected Users (clear that for mail users)"
)

// The two authentication policy refusals (KDC_ERR_POLICY), as Samba 4.22
// answers them (deploy/lab: TestLabFAST, TestLabPolicyAtS4U2Proxy).
const (
	// fixPolicyFrom: at the AS exchange the service account's own
	// restrictions apply; an authentication policy's AllowedToAuthenticateFrom
	// (NTSTATUS 0xC0000070) needs the exchange armoured (FAST).
	fixPolicyFrom = "the KDC refused the service account's TGT by policy. If the error shows NTSTATUS 0xC0000070 (STATUS_INVALID_WORKSTATION), " +
		"an authentication policy on {{account}} restricts where it may authenticate from (AllowedToAuthenticateFrom), " +
		"so the KDC wants its AS exchange armoured (FAST) with the TGT of a computer the condition allows: give the gateway that computer account " +
		"as its armor account (segmesh.ticket.armorAccountUserName, e.g. the gateway host's SEGGW$, and its password in segmesh.ticket.armorAccountPassword), " +
		"or take the condition off the policy " +
		"(Get-ADUser {{account}} -Properties AuthenticationPolicy; Set-ADAuthenticationPolicy; Samba: samba-tool user auth policy view {{account}}, " +
		"samba-tool domain auth policy modify); or the account's \"Log On To\" workstations (userWorkstations) exclude the gateway. " +
		"Otherwise check the account's logon hours and its authentication policy silo"
	// fixPolicyTo: in S4U2Proxy the target's AllowedToAuthenticateTo is
	// checked against the service account (NTSTATUS 0xC0000413).
	fixPolicyTo = "an authentication policy on the account that holds {{spn}} (the Exchange computer account) does not allow the KCD service account: " +
		"in S4U2Proxy the KDC checks the target's AllowedToAuthenticateTo against the service account, not the user " +
		"(NTSTATUS 0xC0000413, STATUS_AUTHENTICATION_FIREWALL_FAILED). Add {{account}} (or a group holding it) to that condition, " +
		"or assign the Exchange account a policy that allows it (Get-ADComputer EXCHANGE -Properties AuthenticationPolicy; " +
		"Set-ADAuthenticationPolicy -ComputerAllowedToAuthenticateTo; Samba: samba-tool user auth policy view 'EXCHANGE$', " +
		"samba-tool domain auth policy modify --computer-allowed-to-authenticate-to)"
)

// catalogue is the one table of Kerberos error codes (RFC 4120 7.5.9).
var catalogue = []Entry{
	{Code: errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, Class: ClassNotFound,
		Meaning: "user or UPN not in the directory (altSecurityIdentities Kerberos:USER@DOMAIN, or certificate mapping)",
		Fix:     fixUnknownUser,
		At: map[Stage]string{StageASReq: "the KDC does not know the KCD service account: check kcd.serviceAccountUserName " +
			"(the sAMAccountName, without the domain) and that kcd.domains[0] is its domain, in uppercase; " + FixServiceAccount}},
	{Code: errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN, Class: ClassSetup,
		Meaning: "SPN missing: the target SPN, or the service account's own SPN",
		Fix:     "the KDC does not know the service account as a service: protocol transition needs an SPN on the KCD service account (setspn -S HTTP/gateway-host {{account}})",
		At: map[Stage]string{
			StageS4U2Proxy: "the KDC does not know the target SPN: register it on the Exchange (or load balancer) account (setspn -S {{spn}} <exchange account>; check with setspn -Q {{spn}}) " +
				"and write kcd.targetSPN in HTTP/{exchangeName} format, spelled as registered",
			StageReferral: "the KDC has no trust path to the user's domain: check the domain trust and the configured domain list (kcd.domains)",
		}},
	{Code: errorcode.KDC_ERR_POLICY, Class: ClassRefused,
		Meaning: "refused by policy: account disabled (Samba) or restricted, or an authentication policy",
		Fix:     "KDC policy refused the request: check account restrictions (logon hours, allowed workstations) and authentication policies or silos on the service account and the user",
		At: map[Stage]string{
			StageS4U2Self: "the KDC refused the user by policy: the user's account is disabled, locked out or expired in Active Directory (Samba answers 12 for a disabled account), " +
				"or logon hours, allowed workstations or an authentication policy restrict it: enable or unlock the account",
			StageASReq:     fixPolicyFrom,
			StageS4U2Proxy: fixPolicyTo,
			StageRenew: "the KDC does not renew service tickets (Heimdal and so Samba accept only a TGT in a TGS request): " +
				"the gateway gets a new ticket by S4U2Self and S4U2Proxy instead; nothing to fix",
		}},
	{Code: errorcode.KDC_ERR_BADOPTION, Class: ClassRefused,
		Meaning: "SPN not in msDS-AllowedToDelegateTo (nor RBCD), protocol transition off, or user sensitive / Protected Users",
		Fix:     fixDelegation,
		At: map[Stage]string{StageASReq: "the KDC refused the requested TGT options (forwardable, renewable): " +
			"check the service account is not marked sensitive and cannot be delegated"}},
	{Code: errorcode.KDC_ERR_ETYPE_NOSUPP, Class: ClassSetup,
		Meaning: "no common encryption type",
		Fix: "no common encryption type: the gateway offers AES only (RC4 is off by default, its key is the NT hash); " +
			"the service account {{account}} has no AES keys: set its msDS-SupportedEncryptionTypes to AES (24, " +
			"\"This account supports Kerberos AES 128/256 bit encryption\") and reset its password so AES keys exist, " +
			"or, only for a legacy domain that cannot, set segmesh.ticket.allowRc4 to true. " +
			"An unexpected RC4-only offer can also come from a rogue KDC: check the DNS answers for _kerberos._tcp " +
			"(segmesh.dnsServer) or set kcd.domains[].domainController",
		At: map[Stage]string{StageS4U2Proxy: "no common encryption type for the ticket to {{spn}}: the gateway offers AES only " +
			"(RC4 is off by default); the account holding {{spn}} has no AES keys: set its msDS-SupportedEncryptionTypes " +
			"to AES (24) and reset its password, or, only for a legacy domain that cannot, set segmesh.ticket.allowRc4 to true"}},
	{Code: errorcode.KDC_ERR_CLIENT_REVOKED, Class: ClassRefused,
		Meaning: "account disabled, locked or expired",
		Fix:     "the user's account is disabled, locked out or expired in Active Directory: enable or unlock it",
		At:      map[Stage]string{StageASReq: "the KCD service account is disabled, locked out or expired: enable or unlock it in Active Directory"}},
	{Code: errorcode.KDC_ERR_KEY_EXPIRED, Class: ClassSetup,
		Meaning: "service account password expired",
		Fix:     "the service account's password has expired: set a new one in Active Directory and in kcd.serviceAccountPassword (with the suffix .plaintext)"},
	{Code: errorcode.KDC_ERR_PREAUTH_FAILED, Class: ClassSetup,
		Meaning: "wrong service account password",
		Fix:     "pre-authentication failed: " + fixPassword},
	{Code: errorcode.KDC_ERR_PREAUTH_REQUIRED, Class: ClassSetup,
		Meaning: "pre-authentication required (normal as the first answer of an AS exchange; else a wrong password)",
		Fix:     "pre-authentication failed: " + fixPassword},
	{Code: errorcode.KDC_ERR_SVC_UNAVAILABLE, Class: ClassUnavailable, Temporary: true,
		Meaning: "KDC temporarily unavailable",
		Fix:     "the KDC is temporarily unavailable; the request may be retried"},
	{Code: errorcode.KRB_AP_ERR_BAD_INTEGRITY, Class: ClassCrypto,
		Meaning: "integrity check failed: password or krbtgt key changed",
		Fix: "integrity check failed: the TGT no longer matches the KDC's keys (the service account password or the krbtgt key changed); " +
			"the gateway gets a new TGT; if it persists, the configured password is wrong: " + fixPassword},
	{Code: errorcode.KRB_AP_ERR_TKT_EXPIRED, Class: ClassUnavailable, Temporary: true,
		Meaning: "ticket expired",
		Fix:     "a ticket expired: the gateway renews its TGT ahead of expiry; if this persists check the gateway's clock"},
	{Code: errorcode.KRB_AP_ERR_BADMATCH, Class: ClassSetup,
		Meaning: "ticket and request name different clients",
		Fix: "the ticket and the request do not match: S4U2Self must name the service account itself; " +
			"check kcd.serviceAccountUserName is the account the password belongs to"},
	{Code: errorcode.KRB_AP_ERR_SKEW, Class: ClassUnavailable,
		Meaning: "clock skew too great",
		Fix:     "clock skew too great (more than 5 minutes) between the gateway and the domain controller: synchronise time (NTP) on both"},
	{Code: errorcode.KRB_AP_ERR_MODIFIED, Class: ClassCrypto,
		Meaning: "checksum or decryption refused (PA-FOR-USER checksum type, or password changed)",
		Fix: "the KDC rejected a checksum or could not decrypt: the PA-FOR-USER checksum type must match the TGT session key " +
			"(AES keys need HMAC-SHA1-96-AES; Windows Server 2025 refuses HMAC-MD5 with AES), or the service account password changed"},
	{Code: errorcode.KRB_AP_ERR_INAPP_CKSUM, Class: ClassCrypto,
		Meaning: "inappropriate checksum type",
		Fix: "inappropriate checksum type: the KDC refused the checksum type chosen for the session key; " +
			"check the service account's msDS-SupportedEncryptionTypes"},
	{Code: errorcode.KRB_ERR_RESPONSE_TOO_BIG, Class: ClassUnavailable, Temporary: true,
		Meaning: "reply too big for UDP",
		Fix:     "the KDC's reply did not fit in a UDP datagram; the gateway asks again over TCP: if it persists, open TCP port 88 to the domain controllers"},
	{Code: errorcode.KRB_ERR_GENERIC, Class: ClassUnavailable, Temporary: true,
		Meaning: "generic KDC error",
		Fix:     "the KDC reported a generic error: its text (in brackets) and the domain controller's event log say more; " + FixDomainControllers},
	{Code: errorcode.KDC_ERR_WRONG_REALM, Class: ClassSetup,
		Meaning: "wrong realm: the domain must be in uppercase, or the user is in another domain",
		Fix: "the KDC says the realm is wrong: the domain name is case-sensitive and must be entered in uppercase in kcd.domains, for example DOMAIN-NAME.COM, " +
			"and a user of another domain needs that domain and its domain controller in kcd.domains; " + FixDomainControllers},
}
