# mit.sh: a second KDC for the lab (lab.sh up --with-mit), sourced by lab.sh:
# MIT krb5kdc 1.20 (Debian's krb5-kdc) with its LDAP backend (krb5-kdc-ldap)
# on an OpenLDAP slapd of its own, realm MIT.TEST, all on 127.0.0.9.
#
# Why: Samba's Heimdal KDC renews only krbtgt tickets, so segmesh's renewal
# of S4U2Proxy tickets can only run end to end against a KDC that renews
# service tickets. MIT does, and supports classic constrained delegation
# (krbAllowedToDelegateTo, set by LDAP: kadmin cannot) and protocol
# transition (+ok_to_auth_as_delegate); it has no RBCD in the LDAP backend.
#
# Accounts: svc_seg (svc_seg's lab password, +ok_to_auth_as_delegate,
# krbAllowedToDelegateTo HTTP/exchange.mit.test@MIT.TEST), the target
# HTTP/exchange.mit.test (random key, also added to the Exchange stand-in's
# keytab so Apache on 127.0.0.3 accepts its tickets), alice and bob (random
# keys: S4U needs none). Every principal and krbtgt may renew for 7 days,
# tickets last 10 h (AD's defaults).

MIT=$STATE/mit
MIT_IP=127.0.0.9
MIT_REALM=MIT.TEST
MIT_BASE=dc=mit,dc=test
MIT_ADMIN_DN="cn=admin,$MIT_BASE"
MIT_PACKAGES="krb5-kdc krb5-kdc-ldap krb5-admin-server slapd ldap-utils"

mit_env() { env KRB5_CONFIG="$MIT/krb5.conf" KRB5_KDC_PROFILE="$MIT/kdc.conf" "$@"; }

mit_write_conf() {
	mkdir -p "$MIT/db" "$MIT/run"
	chmod 700 "$MIT"
	secret mit_ldap
	secret mit_master
	zcat /usr/share/doc/krb5-kdc-ldap/kerberos.schema.gz >"$MIT/kerberos.schema"
	cat >"$MIT/slapd.conf" <<CONF
# segmesh lab: the MIT KDC's directory. Its own config and database.
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
include $MIT/kerberos.schema
pidfile $MIT/run/slapd.pid
argsfile $MIT/run/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 268435456
suffix "$MIT_BASE"
rootdn "$MIT_ADMIN_DN"
rootpw $(cat "$SECRETS/mit_ldap")
directory $MIT/db
index objectClass eq
index krbPrincipalName eq
CONF
	chmod 600 "$MIT/slapd.conf"
	cat >"$MIT/krb5.conf" <<CONF
# segmesh lab: MIT tools aimed at the MIT KDC (KRB5_CONFIG).
[libdefaults]
	default_realm = $MIT_REALM
	dns_lookup_kdc = false
	dns_lookup_realm = false
	rdns = false
	dns_canonicalize_hostname = false
	forwardable = true
	udp_preference_limit = 1
[realms]
	$MIT_REALM = {
		kdc = $MIT_IP:88
	}
[domain_realm]
	.mit.test = $MIT_REALM
[dbmodules]
	ldapconf = {
		db_library = kldap
		ldap_kerberos_container_dn = cn=krbContainer,$MIT_BASE
		ldap_kdc_dn = $MIT_ADMIN_DN
		ldap_kadmind_dn = $MIT_ADMIN_DN
		ldap_service_password_file = $MIT/service.keyfile
		ldap_servers = ldap://$MIT_IP
		ldap_conns_per_server = 2
	}
CONF
	cat >"$MIT/kdc.conf" <<CONF
# segmesh lab: the MIT KDC (KRB5_KDC_PROFILE).
[kdcdefaults]
	kdc_listen = $MIT_IP:88
	kdc_tcp_listen = $MIT_IP:88
[realms]
	$MIT_REALM = {
		database_module = ldapconf
		key_stash_file = $MIT/stash
		max_life = 10h 0m 0s
		max_renewable_life = 7d 0h 0m 0s
		supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
		acl_file = $MIT/kadm5.acl
	}
[dbmodules]
	ldapconf = {
		db_library = kldap
		ldap_kerberos_container_dn = cn=krbContainer,$MIT_BASE
		ldap_kdc_dn = $MIT_ADMIN_DN
		ldap_kadmind_dn = $MIT_ADMIN_DN
		ldap_service_password_file = $MIT/service.keyfile
		ldap_servers = ldap://$MIT_IP
		ldap_conns_per_server = 2
	}
[logging]
	kdc = FILE:$LOG/krb5kdc.log
CONF
	: >"$MIT/kadm5.acl"
	# The bind password as kdb5_ldap_util stashsrvpw writes it (DN#{HEX}hex).
	printf '%s#{HEX}%s\n' "$MIT_ADMIN_DN" "$(od -An -tx1 <"$SECRETS/mit_ldap" | tr -d ' \n')" >"$MIT/service.keyfile"
	chmod 600 "$MIT/service.keyfile"
}

mit_start_slapd() {
	running slapd && return 0
	start_daemon slapd /usr/sbin/slapd -d 0 -f "$MIT/slapd.conf" -h "ldap://$MIT_IP:389/"
	wait_tcp "$MIT_IP" 389 30 || die "slapd is not listening on $MIT_IP:389 (see $LOG/slapd.log)"
}

mit_start_kdc() {
	running mitkdc && return 0
	(
		export KRB5_CONFIG=$MIT/krb5.conf KRB5_KDC_PROFILE=$MIT/kdc.conf
		start_daemon mitkdc /usr/sbin/krb5kdc -n
	)
	wait_tcp "$MIT_IP" 88 30 || die "krb5kdc is not listening on $MIT_IP:88 (see $LOG/mitkdc.log, $LOG/krb5kdc.log)"
}

mit_kadmin() { mit_env kadmin.local -r "$MIT_REALM" -q "$1" >>"$LOG/mit.log" 2>&1 || die "kadmin.local $1 failed, see $LOG/mit.log"; }

# mit_delegate_to SPN: svc_seg may delegate to SPN (krbAllowedToDelegateTo,
# which kadmin cannot set).
mit_delegate_to() {
	ldapmodify -x -H "ldap://$MIT_IP" -D "$MIT_ADMIN_DN" -y "$SECRETS/mit_ldap" >>"$LOG/mit.log" 2>&1 <<LDIF || die "krbAllowedToDelegateTo $1 failed, see $LOG/mit.log"
dn: krbPrincipalName=svc_seg@$MIT_REALM,cn=$MIT_REALM,cn=krbContainer,$MIT_BASE
changetype: modify
add: krbAllowedToDelegateTo
krbAllowedToDelegateTo: $1@$MIT_REALM
LDIF
}

mit_provision() {
	[[ -e $MIT/.provisioned ]] && return 0
	stop_daemon mitkdc 10
	stop_daemon slapd 10
	rm -rf "$MIT"
	mkdir -p "$MIT"
	mit_write_conf
	mit_start_slapd
	ldapadd -x -H "ldap://$MIT_IP" -D "$MIT_ADMIN_DN" -y "$SECRETS/mit_ldap" >>"$LOG/mit.log" 2>&1 <<LDIF || die "ldapadd base failed, see $LOG/mit.log"
dn: $MIT_BASE
objectClass: dcObject
objectClass: organization
o: segmesh lab MIT realm
dc: mit
LDIF
	mit_env kdb5_ldap_util -D "$MIT_ADMIN_DN" -w "$(cat "$SECRETS/mit_ldap")" -H "ldap://$MIT_IP" \
		create -subtrees "$MIT_BASE" -r "$MIT_REALM" -s -P "$(cat "$SECRETS/mit_master")" \
		>>"$LOG/mit.log" 2>&1 || die "kdb5_ldap_util create failed, see $LOG/mit.log"
	local renew='-maxlife "10 hours" -maxrenewlife "7 days"'
	mit_kadmin "modprinc $renew krbtgt/$MIT_REALM@$MIT_REALM"
	mit_kadmin "addprinc $renew +ok_to_auth_as_delegate -pw $(cat "$SECRETS/svc") svc_seg"
	mit_kadmin "addprinc $renew -randkey HTTP/exchange.mit.test"
	mit_kadmin "addprinc $renew -randkey alice"
	mit_kadmin "addprinc $renew -randkey bob"
	mit_kadmin "ktadd -k $MIT/exchange.keytab HTTP/exchange.mit.test"
	mit_delegate_to HTTP/exchange.mit.test
	touch "$MIT/.provisioned"
}

# mit_accept: the Exchange stand-in's keytab holds the MIT target's keys
# too (a Samba re-provisioning rewrites that keytab).
mit_accept() {
	local kt=$APACHE/exchange.keytab
	if ! klist -k "$kt" 2>/dev/null | grep -q "exchange.mit.test@$MIT_REALM"; then
		mit_kadmin "ktadd -norandkey -k $kt HTTP/exchange.mit.test"
		chown root:www-data "$kt"
		chmod 640 "$kt"
	fi
}

# mit_short_target: HTTP/short.mit.test, a target whose tickets last 30 s
# and may be renewed for 504 s: AD's 10 hours and 7 days, 1200 times
# faster, for measuring KDC exchanges per user per day on a KDC that renews
# (services/ticket TestLabMITExchangesPerDay). svc_seg may delegate to it.
# Once per realm ($MIT/.short), added to a realm provisioned before it.
mit_short_target() {
	[[ -e $MIT/.short ]] && return 0
	mit_kadmin 'addprinc -maxlife "30 seconds" -maxrenewlife "504 seconds" -randkey HTTP/short.mit.test'
	mit_delegate_to HTTP/short.mit.test
	touch "$MIT/.short"
}

mit_up() {
	mit_provision
	mit_start_slapd
	mit_start_kdc
	mit_accept
	mit_short_target
}

mit_down() {
	stop_daemon mitkdc 10
	stop_daemon slapd 10
}
