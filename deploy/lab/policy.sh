# policy.sh: authentication policies for the lab (Samba 4.20+), sourced by
# lab.sh. Nothing here runs on 4.17 (no policies, and no functional level
# above 2008 R2).
#
# - The DC runs at functional level 2016 (`ad dc functional level = 2016` in
#   smb.conf, then `samba-tool domain level raise`): policies need 2012 R2 or
#   more; the rest of the lab does not care.
# - segmesh-exchange-to (enforced) is assigned to exchange$: its
#   AllowedToAuthenticateTo denies svc_denied and allows everyone else, so
#   S4U2Proxy by svc_denied is refused (KDC_ERR_POLICY) and every other
#   account and user still reaches the Exchange stand-in.
# - segmesh-armor (enforced) is assigned to svc_armor: its
#   AllowedToAuthenticateFrom allows only the computer seggw$, so svc_armor's
#   AS exchange must be armoured (FAST) with seggw$'s TGT.
# Accounts (labtool ldif -policy): svc_denied, svc_armor (svc_seg's password,
# delegation like svc_seg), seggw$ (the computer accounts' password).

AUTHN_POLICIES="CN=AuthN Policies,CN=AuthN Policy Configuration,CN=Services,CN=Configuration,$BASE_DN"

# has_policies: whether the installed Samba has authentication policies.
has_policies() { [[ $(samba_series) != 4.17 ]]; }

# ensure_functional_level: `ad dc functional level = 2016` in smb.conf (read
# at start: a running samba is restarted). Before start_samba.
ensure_functional_level() {
	has_policies || return 0
	grep -q 'ad dc functional level' "$SMBCONF" && return 0
	sed -i '/^\t# segmesh lab$/a\
	ad dc functional level = 2016' "$SMBCONF"
	grep -q 'ad dc functional level' "$SMBCONF" || die "could not set ad dc functional level in $SMBCONF"
	if running samba; then
		log "ad dc functional level set: restarting samba"
		stop_daemon samba 20
	fi
}

# sid_of SAM: an account's objectSid.
sid_of() {
	ldb ldbsearch "(sAMAccountName=$1)" objectSid | sed -n 's/^objectSid: //p'
}

# add_policies: the level raise, the accounts and the two policies, once per
# domain (samba/.policies). After samba runs.
add_policies() {
	has_policies || return 0
	[[ -e $SAMBA/.policies ]] && return 0
	local l=$LOG/policies.log
	if ! samba-tool domain level show -H "$SAMBA/private/sam.ldb" -s "$SMBCONF" 2>>"$l" | grep -q 'Domain function level: (Windows) 2016'; then
		samba-tool domain level raise --domain-level=2016 --forest-level=2016 \
			-H "$SAMBA/private/sam.ldb" -s "$SMBCONF" >>"$l" 2>&1 || die "functional level raise failed, see $l"
	fi
	"$BIN/labtool" ldif -dir "$PKI" -policy -user-password-file "$SECRETS/user" \
		-svc-password-file "$SECRETS/svc" -machine-password-file "$SECRETS/machine" >"$STATE/policy.ldif"
	ldb ldbadd "$STATE/policy.ldif" >>"$l" 2>&1 || die "ldbadd of the policy accounts failed, see $l"
	rm -f "$STATE/policy.ldif"
	local denied gw
	denied=$(sid_of svc_denied)
	gw=$(sid_of 'seggw$')
	[[ -n $denied && -n $gw ]] || die "no objectSid for svc_denied or seggw\$, see $l"
	samba-tool domain auth policy create --name=segmesh-exchange-to --enforce \
		--computer-allowed-to-authenticate-to="O:SYD:(D;;CR;;;$denied)(A;;CR;;;WD)" \
		-H "$SAMBA/private/sam.ldb" -s "$SMBCONF" >>"$l" 2>&1 || die "policy segmesh-exchange-to failed, see $l"
	samba-tool domain auth policy create --name=segmesh-armor --enforce \
		--user-allowed-to-authenticate-from="O:SYD:(A;;CR;;;$gw)" \
		-H "$SAMBA/private/sam.ldb" -s "$SMBCONF" >>"$l" 2>&1 || die "policy segmesh-armor failed, see $l"
	ldb ldbmodify >>"$l" 2>&1 <<LDIF || die "assigning the policies failed, see $l"
dn: CN=exchange,CN=Computers,$BASE_DN
changetype: modify
replace: msDS-AssignedAuthNPolicy
msDS-AssignedAuthNPolicy: CN=segmesh-exchange-to,$AUTHN_POLICIES

dn: CN=svc_armor,CN=Users,$BASE_DN
changetype: modify
replace: msDS-AssignedAuthNPolicy
msDS-AssignedAuthNPolicy: CN=segmesh-armor,$AUTHN_POLICIES
LDIF
	touch "$SAMBA/.policies"
}
