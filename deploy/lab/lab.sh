#!/bin/bash
# lab.sh: the segmesh lab on loopback. A Samba AD DC (realm LAB.TEST), an
# Exchange stand-in (Apache + mod_auth_gssapi), a lab PKI with CRLs served over
# HTTP, forwarders that act as fault switches, and optionally SOGo ActiveSync.
# See deploy/lab/README.md. Runs as root on Debian 12, without systemd.
#
#   lab.sh up [--samba 4.22|4.17] [--users N] [--with-sogo] [--with-mit]
#                                         install, provision once, start what is not running
#                                         (Samba 4.22 from bookworm-backports by default;
#                                         switching versions reinstalls and re-provisions)
#   lab.sh down                           stop exactly what up started
#   lab.sh status                         what runs, which faults are on
#   lab.sh env                            the lab facts as KEY=VALUE (also $STATE/lab.json)
#   lab.sh revoke USER                    revoke USER's device certificate, re-issue the CRL
#   lab.sh fault kdc|ldap|cdp|exchange on|off   (and: fault cdp garbage, fault kdc|ldap hang)
#   lab.sh svc-password NEW|--reset       set svc_seg's password in the domain (a rotation), or put it back
set -euo pipefail

STATE=${SEGMESH_LAB_DIR:-/var/tmp/segmesh-lab}
LAB_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$LAB_SRC/../.." && pwd)
RUN=$STATE/run
LOG=$STATE/log
PKI=$STATE/pki
SAMBA=$STATE/samba
SMBCONF=$SAMBA/etc/smb.conf
APACHE=$STATE/apache
SECRETS=$STATE/secrets
BIN=$STATE/bin
CDP=$STATE/cdp
TEMPLATE_CACHE=${SEGMESH_LAB_CACHE:-/var/cache/segmesh-lab}

DC_IP=127.0.0.2
EXCHANGE_IP=127.0.0.3
CDP_IP=127.0.0.4
KDC_FWD_IP=127.0.0.5
LDAP_FWD_IP=127.0.0.6
SOGO_IP=127.0.0.7
EDGE_IP=127.0.0.1
REALM=LAB.TEST
BASE_DN=DC=lab,DC=test
NAMED_USERS="alice bob carol mallory eve dave frank xavier"
NEGATIVE_CERTS="alice-ca2 alice-ca3 alice-revoked alice-expired alice-notyet alice-wrongeku alice-cloud"

# The Samba series the lab runs: `up --samba`, else $SEGMESH_LAB_SAMBA, else
# 4.22 (bookworm-backports). 4.17 is Debian 12's own.
SAMBA_DEFAULT=4.22
SAMBA_SERIES=${SEGMESH_LAB_SAMBA:-$SAMBA_DEFAULT}
BACKPORTS=bookworm-backports
# The AD DC binary is in samba-ad-dc from 4.22 on (in samba for 4.17; the
# 4.17 samba-ad-dc is an empty package that depends on it).
SAMBA_PACKAGES="samba samba-ad-dc samba-ad-provision samba-dsdb-modules samba-vfs-modules winbind ldb-tools"
CORE_PACKAGES="krb5-user ldap-utils apache2 libapache2-mod-auth-gssapi python3 openssl curl iproute2 procps"
SOGO_PACKAGES="sogo sogo-activesync dovecot-imapd postgresql memcached libwbxml2-utils"

log() { printf '%s lab: %s\n' "$(date +%H:%M:%S.%3N)" "$*" >&2; }
die() {
	log "error: $*"
	LAB_DIED=1
	exit 1
}

# on_exit RC COMMAND: a mutating command that set -e stopped says where.
# Without it a failing step ends `up` without a word (8954e80: on a machine
# without Samba, `up` stopped right after its first install and CI's log
# showed nothing); die has said its own error already.
on_exit() {
	local rc=$1
	if [[ $rc != 0 && -z ${LAB_DIED:-} ]]; then
		log "error: stopped by a failing command (exit $rc): $2; the log is in $LOG"
	fi
}
# step NAME: print how long the previous step took (bring-up cost table).
STEP_T0=
STEP_NAME=
step() {
	local now
	now=$(date +%s%N)
	if [[ -n $STEP_NAME ]]; then
		log "$(printf '%-22s %6d ms' "$STEP_NAME" $(((now - STEP_T0) / 1000000)))"
	fi
	STEP_NAME=$1
	STEP_T0=$now
}

need_root() { [[ $(id -u) == 0 ]] || die "run as root"; }

# ---------------------------------------------------------------- packages

missing_packages() {
	# One dpkg-query for all: it prints nothing for an unknown package.
	local installed p
	installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "$@" 2>/dev/null | awk '$2 == "installed" {print $1}' || true)
	for p in "$@"; do
		grep -qx "$p" <<<"$installed" || echo "$p"
	done
}

# install_packages PKG...: installs what is missing (from the default suite).
install_packages() {
	local missing
	missing=$(missing_packages "$@" | tr '\n' ' ')
	[[ -z ${missing// /} ]] && return 0
	log "installing: $missing"
	# shellcheck disable=SC2086
	apt_install $missing
}

# apt_install ARGS...: apt-get install with daemons kept from starting (they
# would bind 0.0.0.0): a policy-rc.d answering 101 is put in place unless one
# exists. A failure is retried once after apt-get update (a stale index).
apt_install() {
	local created_policy=
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\n# segmesh lab: no daemon starts during package installs\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		created_policy=1
	fi
	local rc=0
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		-o Dpkg::Options::=--force-confold "$@" >>"$LOG/apt.log" 2>&1 || rc=$?
	if [[ $rc != 0 ]]; then
		log "apt-get install failed (stale index?): running apt-get update and retrying"
		apt-get update -q >>"$LOG/apt.log" 2>&1 || true
		rc=0
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			-o Dpkg::Options::=--force-confold "$@" >>"$LOG/apt.log" 2>&1 || rc=$?
	fi
	[[ -n $created_policy ]] && rm -f /usr/sbin/policy-rc.d
	[[ $rc == 0 ]] || die "apt-get install failed, see $LOG/apt.log"
}

# ensure_backports: adds bookworm-backports to the Debian source apt already
# uses (the deb822 debian.sources of the Debian image, or a one-line
# sources.list entry), then updates the index. Nothing else is changed.
ensure_backports() {
	if apt-cache policy 2>/dev/null | grep -q "$BACKPORTS/main"; then
		return 0
	fi
	local f=/etc/apt/sources.list.d/debian.sources line
	if [[ -f $f ]] && grep -qE '^Suites:.*\bbookworm\b' "$f" && ! grep -q "$BACKPORTS" "$f"; then
		# The stanza whose suites include bookworm-updates is the main archive.
		sed -i -E "s/^(Suites:.*\bbookworm-updates\b.*)$/\1 $BACKPORTS/" "$f"
		grep -q "$BACKPORTS" "$f" || sed -i -E "0,/^Suites:.*\bbookworm\b/s//& $BACKPORTS/" "$f"
	elif line=$(grep -hE '^deb\s+\S+\s+bookworm\s' /etc/apt/sources.list 2>/dev/null | head -1) && [[ -n $line ]]; then
		awk -v s="$BACKPORTS" '{$3 = s; print "deb", $2, $3, "main"}' <<<"$line" >/etc/apt/sources.list.d/segmesh-lab-backports.list
	else
		die "no Debian bookworm source found in /etc/apt to add $BACKPORTS to; add it, or use --samba 4.17"
	fi
	log "added $BACKPORTS to apt's Debian source; apt-get update"
	apt-get update -q >>"$LOG/apt.log" 2>&1 || die "apt-get update failed, see $LOG/apt.log"
}

# samba_series: the installed Samba's major.minor (4.22), or nothing.
samba_series() {
	local v
	v=$(dpkg-query -W -f='${Version}' samba 2>/dev/null || true)
	[[ $v =~ ^([0-9]+:)?([0-9]+\.[0-9]+)\. ]] && echo "${BASH_REMATCH[2]}"
	return 0 # no Samba yet: "" (a non-zero status stopped 'up' under set -e)
}

# ensure_samba SERIES: Samba SERIES and its tools installed. 4.22 comes from
# bookworm-backports; 4.17 from bookworm, downgrading every backported package
# of Samba's source (libldb2, libtalloc2, python3-samba, ...). A switch stops
# the lab first and drops the provisioned domain (up provisions it anew; the
# template cache is per version).
ensure_samba() {
	local want=$1 have
	have=$(samba_series)
	if [[ $have == "$want" && -z $(missing_packages $SAMBA_PACKAGES) ]]; then
		return 0
	fi
	if [[ -n $have && $have != "$want" ]]; then
		log "switching Samba $have -> $want: stopping the lab, reinstalling Samba, provisioning anew"
		stop_all
		rm -rf "$SAMBA"
	fi
	case $want in
	4.22)
		ensure_backports
		# shellcheck disable=SC2086
		apt_install -t "$BACKPORTS" $SAMBA_PACKAGES
		;;
	4.17)
		local p sel=()
		# Every installed package built from Samba's source in backports goes
		# back to bookworm's version, then the set is completed.
		for p in $(dpkg-query -W -f='${Package} ${source:Package} ${Version}\n' 2>/dev/null |
			awk '$2 == "samba" && $3 ~ /bpo/ {print $1}'); do
			sel+=("$p/bookworm")
		done
		for p in $SAMBA_PACKAGES; do
			[[ " ${sel[*]} " == *" $p/bookworm "* ]] || sel+=("$p/bookworm")
		done
		apt_install --allow-downgrades "${sel[@]}"
		;;
	*) die "--samba $want: this lab knows 4.22 (the default, bookworm-backports) and 4.17 (Debian 12)" ;;
	esac
	have=$(samba_series)
	[[ $have == "$want" ]] || die "wanted Samba $want, have ${have:-none} installed; see $LOG/apt.log"
	log "Samba $(dpkg-query -W -f='${Version}' samba) installed"
}

# ---------------------------------------------------------------- processes

# pid_of NAME: the PID recorded for NAME, if that process is alive (not a
# zombie) and still runs the expected program.
pid_of() {
	local name=$1 f=$RUN/$1.pid pid exe want stat
	[[ -s $f ]] || return 1
	read -r pid want <"$f" || true
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	stat=$(ps -o stat= -p "$pid" 2>/dev/null || true)
	[[ -n $stat && $stat != Z* ]] || return 1
	if [[ -n ${want:-} ]]; then
		exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
		# A rebuilt labtool leaves its running copies "(deleted)".
		[[ ${exe% (deleted)} == "$want" ]] || return 1
	fi
	echo "$pid"
}

running() { pid_of "$1" >/dev/null; }

# start_daemon NAME EXE ARGS...: runs EXE in its own session (so `down` can
# stop the whole tree), stdin/stdout/stderr redirected, and records the PID.
start_daemon() {
	local name=$1 exe=$2
	shift 2
	if running "$name"; then
		return 0
	fi
	# 9>&-: the daemon must not inherit (and so hold) lab.sh's lock.
	setsid "$exe" "$@" </dev/null >>"$LOG/$name.log" 2>&1 9>&- &
	echo "$! $exe" >"$RUN/$name.pid"
	log "started $name (pid $!)"
}

# session_alive SID: whether any non-zombie process of session SID remains.
session_alive() {
	ps -o stat= -s "$1" 2>/dev/null | grep -qv '^Z'
}

# descendants PID: the PIDs of every process below PID (some daemons, like
# sogod's workers, leave the session).
descendants() {
	ps -e -o pid=,ppid= | awk -v root="$1" '{pp[$1] = $2}
		END {for (c in pp) {x = c; while ((x in pp) && x != root && x > 1) x = pp[x]; if (x == root && c != root) print c}}'
}

# any_alive PID...: whether one of them is alive and not a zombie.
any_alive() {
	local p st
	for p in "$@"; do
		st=$(ps -o stat= -p "$p" 2>/dev/null || true)
		[[ -n $st && $st != Z* ]] && return 0
	done
	return 1
}

# stop_daemon NAME [TIMEOUT]: TERM the process (and its session), wait for it
# and everything below it, then KILL what is left, by PID.
stop_daemon() {
	local name=$1 timeout=${2:-15} pid sid i
	local -a tree
	if ! pid=$(pid_of "$name"); then
		rm -f "$RUN/$name.pid"
		return 0
	fi
	sid=$(ps -o sid= -p "$pid" | tr -d ' ')
	mapfile -t tree < <(descendants "$pid")
	kill -TERM "$pid" 2>/dev/null || true
	[[ $sid == "$pid" ]] && kill -TERM -- "-$pid" 2>/dev/null || true
	# A frozen daemon (fault ... hang) handles TERM only once continued.
	kill -CONT "$pid" 2>/dev/null || true
	for ((i = 0; i < timeout * 10; i++)); do
		if ! any_alive "$pid" "${tree[@]}" && ! { [[ $sid == "$pid" ]] && session_alive "$sid"; }; then
			break
		fi
		sleep 0.1
	done
	if any_alive "$pid" "${tree[@]}" || { [[ $sid == "$pid" ]] && session_alive "$sid"; }; then
		log "$name did not stop in ${timeout}s: KILL"
		[[ $sid == "$pid" ]] && kill -KILL -- "-$pid" 2>/dev/null || true
		for i in "$pid" "${tree[@]}"; do
			any_alive "$i" && kill -KILL "$i" 2>/dev/null || true
		done
	fi
	rm -f "$RUN/$name.pid"
	log "stopped $name"
}

# resume NAME: continue a daemon a "fault ... hang" froze.
resume() {
	local pid
	pid=$(pid_of "$1") && kill -CONT "$pid" 2>/dev/null || true
}

# wait_tcp HOST PORT [SECONDS]: poll until HOST:PORT accepts a connection.
wait_tcp() {
	local host=$1 port=$2 secs=${3:-60} i
	for ((i = 0; i < secs * 20; i++)); do
		if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# ---------------------------------------------------------------- files

secret() {
	local f=$SECRETS/$1
	if [[ ! -s $f ]]; then
		# Mixed classes so Samba's complexity check always passes.
		printf 'Lab-%s-%s9!' "$1" "$(openssl rand -hex 8)" >"$f.tmp"
		chmod 600 "$f.tmp"
		mv "$f.tmp" "$f"
	fi
}

write_hosts() {
	local marker="# segmesh-lab" tmp
	local want="$DC_IP dc1.lab.test dc1 lab.test $marker
$EXCHANGE_IP exchange.lab.test $marker
$CDP_IP cdp.lab.test $marker
$KDC_FWD_IP kdc.lab.test $marker
$LDAP_FWD_IP ldap.lab.test $marker
$SOGO_IP sogo.lab.test $marker
127.0.0.9 kdc.mit.test $marker
$EXCHANGE_IP exchange.mit.test $marker
127.0.0.8 other.lab.test $marker
$EDGE_IP seg.lab.test $marker"
	if [[ "$(grep -F "$marker" /etc/hosts || true)" == "$want" ]]; then
		return 0
	fi
	tmp=$(mktemp)
	{ grep -vF "$marker" /etc/hosts || true; echo "$want"; } >"$tmp"
	# /etc/hosts may be a bind mount: rewrite in place, never rename over it.
	cat "$tmp" >/etc/hosts
	rm -f "$tmp"
}

write_krb5_conf() {
	cat >"$STATE/krb5.conf.tmp" <<EOF
# segmesh lab: tools use the DC directly; segmesh's config names the
# forwarder (kdc.lab.test, 127.0.0.5) so that "lab.sh fault kdc on" bites.
[libdefaults]
	default_realm = $REALM
	dns_lookup_kdc = false
	dns_lookup_realm = false
	rdns = false
	dns_canonicalize_hostname = false
	forwardable = true
	udp_preference_limit = 1
[realms]
	$REALM = {
		kdc = $DC_IP:88
		admin_server = $DC_IP
	}
[domain_realm]
	.lab.test = $REALM
	lab.test = $REALM
EOF
	mv "$STATE/krb5.conf.tmp" "$STATE/krb5.conf"
}

build_labtool() {
	local src=$LAB_SRC/cmd/labtool sum
	# Keyed on the sources' content: go.mod and go.sum change under other
	# people's feet in a shared tree, their mtimes say nothing.
	sum=$(cat "$src"/*.go | sha256sum | cut -c1-32)
	if [[ -x $BIN/labtool && "$(cat "$BIN/labtool.sum" 2>/dev/null)" == "$sum" ]]; then
		return 0
	fi
	command -v go >/dev/null || die "Go is needed to build deploy/lab/cmd/labtool"
	(cd "$REPO" && go build -o "$BIN/labtool.tmp" ./deploy/lab/cmd/labtool) || die "go build labtool failed"
	mv "$BIN/labtool.tmp" "$BIN/labtool"
	echo "$sum" >"$BIN/labtool.sum"
}

# ---------------------------------------------------------------- PKI

make_pki() {
	"$BIN/labtool" pki -dir "$PKI" -users "$USERS" -pfx-password-file "$SECRETS/pfx" 2>>"$LOG/pki.log"
	if [[ ! -s $PKI/trust/trust.pfx ]]; then
		mkdir -p "$PKI/trust"
		cat "$PKI/ca/root.pem" "$PKI/ca/inter.pem" "$PKI/ca/ca2.pem" >"$PKI/trust/trust.pem"
		# openssl 3 defaults: PBES2 AES-256-CBC, PBKDF2, MAC HMAC-SHA-256.
		openssl pkcs12 -export -nokeys -in "$PKI/trust/trust.pem" \
			-passout "file:$SECRETS/trust" -out "$PKI/trust/trust.pfx.tmp"
		mv "$PKI/trust/trust.pfx.tmp" "$PKI/trust/trust.pfx"
	fi
}

publish_crls() {
	mkdir -p "$CDP"
	[[ -e $RUN/cdp.garbage ]] && return 0
	local f
	for f in "$PKI"/crl/*.crl; do
		cp "$f" "$CDP/$(basename "$f").tmp"
		mv "$CDP/$(basename "$f").tmp" "$CDP/$(basename "$f")"
	done
}

# ---------------------------------------------------------------- Samba

samba_template_key() {
	local v
	v=$(dpkg-query -W -f='${Version}' samba)
	printf '%s' "$v|$SAMBA" | sha256sum | cut -c1-16
}

ldb() { "$@" -H "$SAMBA/private/sam.ldb" --configfile="$SMBCONF"; }

add_accounts() {
	local ldif=$STATE/accounts.ldif
	"$BIN/labtool" ldif -dir "$PKI" -users "$USERS" -user-password-file "$SECRETS/user" \
		-svc-password-file "$SECRETS/svc" -machine-password-file "$SECRETS/machine" >"$ldif"
	ldb ldbadd "$ldif" >"$LOG/accounts.log" 2>&1 || die "ldbadd failed, see $LOG/accounts.log"
	rm -f "$ldif"
	ldb ldbmodify >>"$LOG/accounts.log" 2>&1 <<EOF || die "ldbmodify failed, see $LOG/accounts.log"
dn: CN=Protected Users,CN=Users,$BASE_DN
changetype: modify
add: member
member: CN=frank,CN=Users,$BASE_DN
EOF
	echo "$USERS" >"$SAMBA/.users"
	# The keytab is exported after msDS-SupportedEncryptionTypes=24 is set (in
	# the same ldbadd), so it holds AES keys only.
	rm -f "$APACHE/exchange.keytab"
	mkdir -p "$APACHE"
	samba-tool domain exportkeytab "$APACHE/exchange.keytab" --principal=HTTP/exchange.lab.test \
		-s "$SMBCONF" >>"$LOG/accounts.log" 2>&1 || die "keytab export failed"
	chown root:www-data "$APACHE/exchange.keytab"
	chmod 640 "$APACHE/exchange.keytab"
}

# more_users: `up --users N` with N above what was provisioned adds the rest.
more_users() {
	local have
	have=$(cat "$SAMBA/.users" 2>/dev/null || echo 0)
	((USERS > have)) || return 0
	log "adding users $((have + 1))..$USERS"
	"$BIN/labtool" ldif -dir "$PKI" -named=false -from $((have + 1)) -users "$USERS" \
		-user-password-file "$SECRETS/user" >"$STATE/more.ldif"
	ldb ldbadd "$STATE/more.ldif" >>"$LOG/accounts.log" 2>&1 || die "ldbadd failed"
	rm -f "$STATE/more.ldif"
	echo "$USERS" >"$SAMBA/.users"
}

# add_variants: the delegation variant accounts (labtool ldif -variants:
# svc_rbcd, svc_nodeleg, svc_konly, grace), once per domain; on 4.19 and
# newer also RBCD on exchange$ for svc_rbcd.
add_variants() {
	[[ -e $SAMBA/.variants ]] && return 0
	"$BIN/labtool" ldif -dir "$PKI" -variants -user-password-file "$SECRETS/user" \
		-svc-password-file "$SECRETS/svc" -machine-password-file "$SECRETS/machine" >"$STATE/variants.ldif"
	ldb ldbadd "$STATE/variants.ldif" >>"$LOG/accounts.log" 2>&1 || die "ldbadd of the variant accounts failed, see $LOG/accounts.log"
	rm -f "$STATE/variants.ldif"
	if [[ $(samba_series) != 4.17 ]]; then
		samba-tool delegation add-principal 'exchange$' svc_rbcd -H "$SAMBA/private/sam.ldb" -s "$SMBCONF" \
			>>"$LOG/accounts.log" 2>&1 || die "RBCD for svc_rbcd failed, see $LOG/accounts.log"
	fi
	touch "$SAMBA/.variants"
}

# add_identity_accounts: what the identity tests need beyond the named
# accounts, added once to any domain (issue 23): the alternative UPN suffix
# corp.example (uPNSuffixes on the Partitions container, as "Active Directory
# Domains and Trusts" adds it), the user xavier on it (xavier@corp.example, no
# password: S4U needs none), and alice's cloud address alice.cloud@example.com
# in her proxyAddresses (her mail stays alice@lab.test).
add_identity_accounts() {
	[[ -e $SAMBA/.identity-accounts ]] && return 0
	ldb ldbmodify >>"$LOG/accounts.log" 2>&1 <<EOF || die "ldbmodify of the identity accounts failed, see $LOG/accounts.log"
dn: CN=Partitions,CN=Configuration,$BASE_DN
changetype: modify
add: uPNSuffixes
uPNSuffixes: corp.example

dn: CN=alice,CN=Users,$BASE_DN
changetype: modify
add: proxyAddresses
proxyAddresses: SMTP:alice@lab.test
proxyAddresses: smtp:alice.cloud@example.com
EOF
	ldb ldbadd >>"$LOG/accounts.log" 2>&1 <<EOF || die "ldbadd of xavier failed, see $LOG/accounts.log"
dn: CN=xavier,CN=Users,$BASE_DN
objectClass: user
sAMAccountName: xavier
userPrincipalName: xavier@corp.example
mail: xavier@corp.example
userAccountControl: $((0x200 | 0x20 | 0x10000))
EOF
	touch "$SAMBA/.identity-accounts"
}

# add_second_spn: a second SPN of the Exchange stand-in, HTTP/mail.lab.test
# (on exchange$, in svc_seg's msDS-AllowedToDelegateTo, and in the stand-in's
# keytab), for the reload lab test that changes kcd.targetSPN under load
# (issue 23 item 4). Each part is added only when missing, so `up` may run it
# on any lab.
add_second_spn() {
	local spn=HTTP/mail.lab.test
	if ! ldb ldbsearch "(servicePrincipalName=$spn)" dn 2>/dev/null | grep -q '^dn:'; then
		ldb ldbmodify >>"$LOG/accounts.log" 2>&1 <<EOF || die "adding $spn to exchange\$ failed, see $LOG/accounts.log"
dn: CN=exchange,CN=Computers,$BASE_DN
changetype: modify
add: servicePrincipalName
servicePrincipalName: $spn
EOF
	fi
	if ! ldb ldbsearch "(&(sAMAccountName=svc_seg)(msDS-AllowedToDelegateTo=$spn))" dn 2>/dev/null | grep -q '^dn:'; then
		ldb ldbmodify >>"$LOG/accounts.log" 2>&1 <<EOF || die "letting svc_seg delegate to $spn failed, see $LOG/accounts.log"
dn: CN=svc_seg,CN=Users,$BASE_DN
changetype: modify
add: msDS-AllowedToDelegateTo
msDS-AllowedToDelegateTo: $spn
EOF
	fi
	if ! klist -k "$APACHE/exchange.keytab" 2>/dev/null | grep -q "$spn@"; then
		samba-tool domain exportkeytab "$APACHE/exchange.keytab" --principal="$spn" \
			-s "$SMBCONF" >>"$LOG/accounts.log" 2>&1 || die "keytab export of $spn failed"
		chown root:www-data "$APACHE/exchange.keytab"
		chmod 640 "$APACHE/exchange.keytab"
	fi
}

# ensure_kdc_aes_only: RC4 off KDC-wide (`kdc supported enctypes` and `kdc
# default domain supported enctypes`, Samba 4.17.4+), as on a Windows domain
# with RC4 disabled. Added to a
# domain provisioned before it; a running Samba is restarted to read it.
ensure_kdc_aes_only() {
	grep -q 'kdc default domain supported enctypes' "$SMBCONF" && return 0
	sed -i '/kdc supported enctypes/d' "$SMBCONF"
	# Accounts without msDS-SupportedEncryptionTypes (other$, the users) are
	# taken to support AES too, as Windows' DefaultDomainSupportedEncTypes
	# does once RC4 is off; else tickets to them fail with ETYPE_NOSUPP.
	sed -i '/^\t# segmesh lab$/a\
	kdc supported enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96\
	kdc default domain supported enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96' "$SMBCONF"
	grep -q 'kdc default domain supported enctypes' "$SMBCONF" || die "could not set kdc supported enctypes in $SMBCONF"
	if running samba; then
		log "kdc supported enctypes set: restarting samba"
		stop_daemon samba 20
	fi
}

start_samba() {
	running samba && return 0
	start_daemon samba /usr/sbin/samba --foreground --no-process-group -s "$SMBCONF"
}

wait_samba() {
	local p
	for p in 88 389 636 3268 3269; do
		wait_tcp "$DC_IP" "$p" 60 || die "samba is not listening on $DC_IP:$p (see $LOG/samba.log)"
	done
}

# ---------------------------------------------------------------- helpers

start_kdc_fwd() {
	start_daemon kdcfwd "$BIN/labtool" fwd "tcp:$KDC_FWD_IP:88=$DC_IP:88" "udp:$KDC_FWD_IP:88=$DC_IP:88"
}

start_ldap_fwd() {
	start_daemon ldapfwd "$BIN/labtool" fwd "tcp:$LDAP_FWD_IP:389=$DC_IP:389" \
		"tcp:$LDAP_FWD_IP:636=$DC_IP:636" "tcp:$LDAP_FWD_IP:3268=$DC_IP:3268" "tcp:$LDAP_FWD_IP:3269=$DC_IP:3269"
}

start_cdp() {
	start_daemon cdp "$BIN/labtool" serve -addr "$CDP_IP:80" -dir "$CDP"
}

# install_cgi: the echo CGI is a copy of labtool (www-data runs it); a running
# Apache picks up a new copy with the next request.
install_cgi() {
	mkdir -p "$APACHE/cgi"
	if ! cmp -s "$BIN/labtool" "$APACHE/cgi/echo.cgi"; then
		cp "$BIN/labtool" "$APACHE/cgi/echo.cgi.tmp"
		chmod 755 "$APACHE/cgi/echo.cgi.tmp"
		mv "$APACHE/cgi/echo.cgi.tmp" "$APACHE/cgi/echo.cgi"
	fi
}

write_apache_conf() {
	mkdir -p "$APACHE/run" "$APACHE/rcache"
	chown www-data:www-data "$APACHE/rcache"
	install_cgi
	local m=/usr/lib/apache2/modules
	cat >"$APACHE/httpd.conf.tmp" <<EOF
# segmesh lab: the Exchange stand-in. Its own config file: the system's
# Apache configuration is not used or changed.
ServerRoot "$APACHE"
ServerName exchange.lab.test
PidFile "$RUN/apache.pid"
DefaultRuntimeDir "$APACHE/run"
Mutex file:$APACHE/run default
ErrorLog "$LOG/apache-error.log"
LogLevel warn
User www-data
Group www-data
LoadModule mpm_event_module $m/mod_mpm_event.so
LoadModule authz_core_module $m/mod_authz_core.so
LoadModule authn_core_module $m/mod_authn_core.so
LoadModule authz_user_module $m/mod_authz_user.so
LoadModule auth_gssapi_module $m/mod_auth_gssapi.so
LoadModule cgid_module $m/mod_cgid.so
LoadModule alias_module $m/mod_alias.so
LoadModule env_module $m/mod_env.so
LoadModule setenvif_module $m/mod_setenvif.so
LoadModule headers_module $m/mod_headers.so
LoadModule ssl_module $m/mod_ssl.so
LoadModule socache_shmcb_module $m/mod_socache_shmcb.so
StartServers 2
ServerLimit 16
ThreadsPerChild 64
MaxRequestWorkers 1024
# An EAS Ping may be held for up to 3540 s.
Timeout 3700
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 60
ScriptSock "$APACHE/run/cgisock"
LogFormat "%a %u %t \"%r\" %>s %B %D" lab
CustomLog "$LOG/apache-access.log" lab
Listen $EXCHANGE_IP:80
Listen $EXCHANGE_IP:443
SSLSessionCache shmcb:$APACHE/run/ssl_scache(512000)
<VirtualHost $EXCHANGE_IP:443>
	SSLEngine on
	SSLCertificateFile "$PKI/servers/exchange/cert.pem"
	SSLCertificateKeyFile "$PKI/servers/exchange/key.pem"
</VirtualHost>
<Directory />
	AllowOverride None
	Require all denied
</Directory>
<Directory "$APACHE/cgi">
	Options +ExecCGI
	Require all granted
</Directory>
# Every path is the echo program; PATH_INFO and REQUEST_URI keep the path.
ScriptAliasMatch "^(/.*)$" "$APACHE/cgi/echo.cgi\$1"
<Location />
	AuthType GSSAPI
	AuthName "Exchange stand-in"
	GssapiCredStore keytab:$APACHE/exchange.keytab
	GssapiAllowedMech krb5
	GssapiBasicAuth Off
	Require valid-user
	# The echo program reports which Authorization schemes arrived.
	CGIPassAuth On
</Location>
# /anon/ answers without authentication: it shows what a client sent.
<Location /anon/>
	AuthType None
	Require all granted
	CGIPassAuth On
</Location>
EOF
	mv "$APACHE/httpd.conf.tmp" "$APACHE/httpd.conf"
}

start_apache() {
	running apache && return 0
	write_apache_conf
	rm -f "$RUN/apache.pid"
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin KRB5_CONFIG="$STATE/krb5.conf" \
		KRB5RCACHEDIR="$APACHE/rcache" LANG=C \
		/usr/sbin/apache2 -f "$APACHE/httpd.conf" -k start </dev/null >>"$LOG/apache.log" 2>&1 9>&- ||
		die "apache failed to start, see $LOG/apache.log and $LOG/apache-error.log"
	local i
	for ((i = 0; i < 100; i++)); do
		[[ -s $RUN/apache.pid ]] && break
		sleep 0.05
	done
	[[ -s $RUN/apache.pid ]] || die "apache wrote no PID file"
	# Record the program too, so a reused PID is never taken for apache.
	echo "$(cat "$RUN/apache.pid") /usr/sbin/apache2" >"$RUN/apache.pid.tmp"
	# Apache rewrites its PidFile only at start; keep ours beside it.
	mv "$RUN/apache.pid.tmp" "$RUN/apache.pid"
	log "started apache (pid $(pid_of apache))"
}

# ---------------------------------------------------------------- env

emit_env() {
	local u U d
	kv() { printf '%s=%s\n' "$1" "$2"; }
	kv LAB_DIR "$STATE"
	kv LAB_REALM "$REALM"
	kv LAB_SAMBA_SERIES "$(cat "$SAMBA/.series" 2>/dev/null || echo 4.17)"
	kv LAB_SAMBA_VERSION "$(dpkg-query -W -f='${Version}' samba 2>/dev/null || true)"
	kv LAB_DOMAIN lab.test
	kv LAB_NETBIOS_DOMAIN LAB
	kv LAB_BASE_DN "$BASE_DN"
	kv LAB_DC_HOST dc1.lab.test
	kv LAB_DC_ADDR "$DC_IP"
	kv LAB_KDC "$KDC_FWD_IP:88"
	kv LAB_KDC_HOST kdc.lab.test
	kv LAB_KDC_DIRECT "$DC_IP:88"
	kv LAB_KRB5_CONFIG "$STATE/krb5.conf"
	kv LAB_LDAP_URL "ldap://ldap.lab.test:389"
	kv LAB_LDAPS_URL "ldaps://ldap.lab.test:636"
	kv LAB_GC_URL "ldap://ldap.lab.test:3268"
	kv LAB_GCS_URL "ldaps://ldap.lab.test:3269"
	kv LAB_LDAP_DIRECT_URL "ldap://dc1.lab.test:389"
	kv LAB_LDAPS_DIRECT_URL "ldaps://dc1.lab.test:636"
	kv LAB_LDAP_CA "$PKI/ca/server.pem"
	kv LAB_SERVER_CA "$PKI/ca/server.pem"
	kv LAB_CA_PEM "$PKI/ca/root.pem,$PKI/ca/inter.pem,$PKI/ca/ca2.pem"
	kv LAB_CA_ROOT "$PKI/ca/root.pem"
	kv LAB_CA_INTER "$PKI/ca/inter.pem"
	kv LAB_CA_SECOND "$PKI/ca/ca2.pem"
	kv LAB_CA_UNTRUSTED "$PKI/ca/ca3.pem"
	kv LAB_CHAIN_PEM "$PKI/trust/trust.pem"
	kv LAB_TRUST_PFX "$PKI/trust/trust.pfx"
	kv LAB_TRUST_PFX_PASSWORD "$(cat "$SECRETS/trust")"
	kv LAB_TRUST_PFX_PASSWORD_FILE "$SECRETS/trust"
	kv LAB_PFX_PASSWORD "$(cat "$SECRETS/pfx")"
	kv LAB_PFX_PASSWORD_FILE "$SECRETS/pfx"
	if [[ -e $SAMBA/.policies ]]; then
		# policy.sh: svc_armor must be armoured with seggw$'s TGT.
		kv LAB_ARMOR_ACCOUNT 'seggw$'
		kv LAB_ARMOR_PASSWORD_FILE "$SECRETS/machine"
	fi
	kv LAB_EDGE_ADDR "$EDGE_IP"
	kv LAB_EDGE_HOST seg.lab.test
	kv LAB_SERVER_CERT "$PKI/servers/seg/cert.pem"
	kv LAB_SERVER_KEY "$PKI/servers/seg/key.pem"
	kv LAB_SERVER_PFX "$PKI/servers/seg/cert.pfx"
	kv LAB_EXCHANGE_HOST exchange.lab.test
	kv LAB_EXCHANGE_URL "http://exchange.lab.test"
	kv LAB_EXCHANGE_HTTPS_URL "https://exchange.lab.test"
	kv LAB_EXCHANGE_CA "$PKI/ca/server.pem"
	kv LAB_EXCHANGE_KEYTAB "$APACHE/exchange.keytab"
	kv LAB_TARGET_SPN HTTP/exchange.lab.test
	kv LAB_OTHER_SPN HTTP/other.lab.test
	# A second SPN of the Exchange stand-in, delegable like the first.
	kv LAB_SECOND_SPN HTTP/mail.lab.test
	kv LAB_SVC_USER svc_seg
	kv LAB_SVC_UPN svc_seg@lab.test
	kv LAB_SVC_SPN HTTP/seg.lab.test
	kv LAB_SVC_DN "CN=svc_seg,CN=Users,$BASE_DN"
	# Variants of svc_seg (its password): RBCD only (on 4.19+), protocol
	# transition without any delegation, "Kerberos only" classic delegation.
	kv LAB_SVC_RBCD svc_rbcd
	kv LAB_SVC_NODELEG svc_nodeleg
	kv LAB_SVC_KONLY svc_konly
	kv LAB_SVC_PASSWORD_FILE "$SECRETS/svc"
	kv LAB_USER_PASSWORD_FILE "$SECRETS/user"
	kv LAB_ADMIN_PASSWORD_FILE "$SECRETS/admin"
	kv LAB_CDP_ADDR "$CDP_IP:80"
	kv LAB_CRL_URLS "http://cdp.lab.test/root.crl,http://cdp.lab.test/inter.crl,http://cdp.lab.test/ca2.crl"
	for u in root inter ca2 ca3; do
		U=${u^^}
		U=${U//-/_}
		kv "LAB_CRL_URL_$U" "http://cdp.lab.test/$u.crl"
	done
	kv LAB_USERS_DIR "$PKI/users"
	kv LAB_GENERATED_USERS "$(cat "$SAMBA/.users" 2>/dev/null || echo 0)"
	for u in $NAMED_USERS $NEGATIVE_CERTS; do
		U=${u^^}
		U=${U//-/_}
		d=$PKI/users/$u
		kv "LAB_CERT_$U" "$d/cert.pem"
		kv "LAB_KEY_$U" "$d/key.pem"
		kv "LAB_CHAIN_$U" "$d/chain.pem"
		kv "LAB_PFX_$U" "$d/cert.pfx"
	done
	kv LAB_SEGMESH_CONFIG "$STATE/segmesh/config.json"
	if [[ -e $STATE/mit/.provisioned ]]; then
		# The MIT krb5kdc realm (up --with-mit): svc_seg's password.
		kv LAB_MIT_REALM MIT.TEST
		kv LAB_MIT_KDC 127.0.0.9:88
		kv LAB_MIT_KRB5_CONFIG "$STATE/mit/krb5.conf"
		kv LAB_MIT_SVC_USER svc_seg
		kv LAB_MIT_TARGET_SPN HTTP/exchange.mit.test
		[[ -e $STATE/mit/.short ]] && kv LAB_MIT_SHORT_SPN HTTP/short.mit.test
		kv LAB_MIT_EXCHANGE_URL "http://exchange.mit.test"
		kv LAB_MIT_EXCHANGE_KEYTAB "$STATE/mit/exchange.keytab"
		kv LAB_MIT_VERSION "$(dpkg-query -W -f='${Version}' krb5-kdc 2>/dev/null || true)"
	fi
	if [[ -e $STATE/sogo/.provisioned ]]; then
		kv LAB_SOGO_URL "https://sogo.lab.test"
		kv LAB_SOGO_HOST sogo.lab.test
		kv LAB_SOGO_ADDR "$SOGO_IP:443"
		kv LAB_SOGO_SPN HTTP/exchange.lab.test
		kv LAB_SOGO_CA "$PKI/ca/server.pem"
		kv LAB_SEGMESH_SOGO_CONFIG "$STATE/segmesh/config-sogo.json"
	fi
}

write_env() {
	emit_env >"$STATE/lab.env.tmp"
	mv "$STATE/lab.env.tmp" "$STATE/lab.env"
	mkdir -p "$STATE/segmesh"
	# lab.json, and a config.json for segmesh (pkg/config) aimed at the lab:
	# KCD through the KDC forwarder, mapping through the LDAP forwarder.
	python3 - "$STATE/lab.env" "$STATE/lab.json" "$STATE/segmesh/config.json" <<'EOF'
import json, os, sys

def write(path, obj):
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.chmod(path + ".tmp", 0o600)
    os.replace(path + ".tmp", path)

e = {}
for line in open(sys.argv[1]):
    k, _, v = line.rstrip("\n").partition("=")
    e[k] = v
write(sys.argv[2], e)
cfg = {
    "clientCertTrustStorePath": e["LAB_CA_PEM"],
    "clientCertTrustStorePasscode": "",
    "requireClientCertificate": True,
    "kcd": {
        "enabled": True,
        "targetSPN": e["LAB_TARGET_SPN"],
        "serviceAccountUserName": e["LAB_SVC_USER"],
        "serviceAccountPassword": open(e["LAB_SVC_PASSWORD_FILE"]).read().strip() + ".plaintext",
        "domains": [{"domain": e["LAB_REALM"], "domainController": e["LAB_KDC_HOST"]}],
    },
    "customGatewaySettings": {
        "cert.mapping.enabled": "true",
        "cert.mapping.ldap.url": e["LAB_LDAPS_URL"],
        "cert.mapping.ldap.user": e["LAB_SVC_DN"],
        "cert.mapping.ldap.basedn": e["LAB_BASE_DN"],
        "enable.cert.revocation.validation": "true",
        "remote.crl.distribution.http.uris": e["LAB_CRL_URLS"],
        "remote.crl.fetch.interval.in.minutes": "1",
        "fail.hard.on.crl.download.failure.during.server.startup": "true",
    },
    "segmesh": {
        "edge": {
            "listen": e["LAB_EDGE_ADDR"] + ":8443",
            "serverCertFile": e["LAB_SERVER_CERT"],
            "serverKeyFile": e["LAB_SERVER_KEY"],
            "exchangeUrls": [e["LAB_EXCHANGE_HTTPS_URL"]],
            "exchangeCaFile": e["LAB_EXCHANGE_CA"],
        },
        "identity": {"ldapCaFile": e["LAB_LDAP_CA"]},
        "crl": {"stateDir": os.path.join(e["LAB_DIR"], "segmesh", "crl-cache"), "fetchIntervalSeconds": 5},
    },
}
write(sys.argv[3], cfg)
if e.get("LAB_SEGMESH_SOGO_CONFIG"):
    # The same, with SOGo as the Exchange upstream (it accepts tickets for
    # the Exchange SPN) on ports of its own, beside the first.
    cfg["segmesh"]["edge"]["listen"] = e["LAB_EDGE_ADDR"] + ":8444"
    cfg["segmesh"]["edge"]["exchangeUrls"] = [e["LAB_SOGO_URL"]]
    cfg["segmesh"]["edge"]["exchangeCaFile"] = e["LAB_SOGO_CA"]
    cfg["segmesh"]["admin"] = {"listen": e["LAB_EDGE_ADDR"] + ":9091"}
    cfg["segmesh"]["crl"]["stateDir"] = os.path.join(e["LAB_DIR"], "segmesh", "crl-cache-sogo")
    write(e["LAB_SEGMESH_SOGO_CONFIG"], cfg)
EOF
}

# ---------------------------------------------------------------- commands

# shellcheck source=deploy/lab/policy.sh
source "$LAB_SRC/policy.sh"

cmd_up() {
	need_root
	USERS=200
	local with_sogo= with_mit=
	while (($#)); do
		case $1 in
		--users) USERS=$2; shift 2 ;;
		--users=*) USERS=${1#*=}; shift ;;
		--with-sogo) with_sogo=1; shift ;;
		--with-mit) with_mit=1; shift ;;
		--samba) SAMBA_SERIES=$2; shift 2 ;;
		--samba=*) SAMBA_SERIES=${1#*=}; shift ;;
		*) die "up: unknown option $1" ;;
		esac
	done
	[[ $USERS =~ ^[0-9]+$ ]] || die "up: --users wants a number"
	local t0
	t0=$(date +%s%N)
	mkdir -p "$STATE" "$RUN" "$LOG" "$SECRETS" "$BIN" "$CDP"
	chmod 755 "$STATE"
	chmod 700 "$SECRETS"
	step packages
	install_packages $CORE_PACKAGES
	ensure_samba "$SAMBA_SERIES"
	# A domain provisioned by another Samba series is not reused (a lab from
	# before the series was recorded ran 4.17).
	if [[ -e $SAMBA/.provisioned && "$(cat "$SAMBA/.series" 2>/dev/null || echo 4.17)" != "$SAMBA_SERIES" ]]; then
		log "the domain in $SAMBA was provisioned by another Samba series: provisioning anew"
		stop_all
		rm -rf "$SAMBA"
	fi
	[[ -n $with_sogo ]] && install_packages $SOGO_PACKAGES
	if [[ -n $with_mit ]]; then
		# shellcheck source=deploy/lab/mit.sh
		source "$LAB_SRC/mit.sh"
		# shellcheck disable=SC2086
		install_packages $MIT_PACKAGES
	fi
	step setup
	local s
	for s in admin svc user machine pfx trust; do secret "$s"; done
	write_hosts
	write_krb5_conf
	if [[ ! -e $SAMBA/.provisioned ]]; then
		# Provisioning is the slow step (single-threaded Python): labtool is
		# built and the PKI made on the other core meanwhile.
		step "provision+build+pki"
		(provision_samba_base) &
		local prov_pid=$!
		(build_labtool && make_pki) || { wait "$prov_pid" || true; die "labtool or PKI failed, see $LOG/pki.log"; }
		wait "$prov_pid" || die "provision failed"
		step accounts
		finish_samba_provision
		add_variants
		add_identity_accounts
		add_second_spn
	else
		step "build labtool"
		build_labtool
		step pki
		make_pki
		more_users
		add_variants
		add_identity_accounts
		add_second_spn
	fi
	step "crl publish"
	"$BIN/labtool" crl -dir "$PKI" 2>>"$LOG/pki.log"
	publish_crls
	step "start samba"
	ensure_kdc_aes_only
	ensure_functional_level
	start_samba
	start_kdc_fwd
	start_ldap_fwd
	[[ -e $RUN/fault.cdp ]] || start_cdp
	install_cgi
	[[ -e $RUN/fault.exchange ]] || start_apache
	step "wait samba"
	wait_samba
	add_policies
	if [[ -n $with_mit ]]; then
		step "mit kdc"
		mit_up
	fi
	if [[ -n $with_sogo ]]; then
		step sogo
		# shellcheck source=/dev/null
		source "$LAB_SRC/sogo.sh"
		sogo_up
	fi
	step env
	write_env
	step ""
	log "up in $((($(date +%s%N) - t0) / 1000000)) ms"
}

# provision_samba_base: provision (or restore the template) without accounts.
provision_samba_base() {
	rm -rf "$SAMBA"
	mkdir -p "$SAMBA"
	local key tpl
	key=$(samba_template_key)
	tpl=$TEMPLATE_CACHE/samba-$key.tar
	if [[ -s $tpl && -z ${SEGMESH_LAB_NO_CACHE:-} ]]; then
		log "samba: reusing the provisioned domain in $tpl (SEGMESH_LAB_NO_CACHE=1 re-provisions)"
		tar -C "$SAMBA" -xf "$tpl"
		# The template's Administrator password comes with it.
		cp "$SAMBA/.admin" "$SECRETS/admin"
	else
		: >"$SAMBA/empty.conf"
		# -s names an empty smb.conf (else Debian's defaults are copied in);
		# --targetdir keeps all state in $SAMBA.
		samba-tool domain provision --realm="$REALM" --domain=LAB --server-role=dc \
			--dns-backend=SAMBA_INTERNAL --host-name=dc1 --host-ip="$DC_IP" \
			--adminpass="$(cat "$SECRETS/admin")" --targetdir="$SAMBA" -s "$SAMBA/empty.conf" \
			--option="interfaces=$DC_IP/8" --option="bind interfaces only=yes" \
			>"$LOG/provision.log" 2>&1 || die "samba provision failed, see $LOG/provision.log"
		mkdir -p "$TEMPLATE_CACHE"
		chmod 700 "$TEMPLATE_CACHE"
		cp "$SECRETS/admin" "$SAMBA/.admin"
		tar -C "$SAMBA" -cf "$tpl.tmp" . && mv "$tpl.tmp" "$tpl"
	fi
}

finish_samba_provision() {
	# The lab must never forward a DNS lookup, and nothing may reach out.
	sed -i '/dns forwarder/d' "$SMBCONF"
	if ! grep -q 'segmesh lab' "$SMBCONF"; then
		sed -i "/^\[global\]/a\\
	# segmesh lab\\
	server services = -dnsupdate -nbt -wrepl -ntp_signd -kcc -drepl\\
	ldap server require strong auth = no\\
	tls enabled = yes\\
	tls keyfile = $PKI/servers/dc1/key.pem\\
	tls certfile = $PKI/servers/dc1/cert.pem\\
	tls cafile = $PKI/ca/server.pem\\
	pid directory = $SAMBA/run\\
	ncalrpc dir = $SAMBA/run/ncalrpc\\
	winbindd socket directory = $SAMBA/run/winbindd\\
	log file = $LOG/samba.log\\
	max log size = 10000\\
	log level = 1" "$SMBCONF"
	fi
	mkdir -p "$SAMBA/run"
	add_accounts
	samba_series >"$SAMBA/.series"
	touch "$SAMBA/.provisioned"
}

# stop_all: stops every daemon up started (faults are left as they are).
stop_all() {
	local n
	if [[ -d $STATE/sogo ]]; then
		# shellcheck source=deploy/lab/sogo.sh
		source "$LAB_SRC/sogo.sh"
		sogo_down
	fi
	if [[ -d $STATE/mit ]]; then
		# shellcheck source=deploy/lab/mit.sh
		source "$LAB_SRC/mit.sh"
		mit_down
	fi
	for n in apache cdp ldapfwd kdcfwd samba; do
		stop_daemon "$n" 20
	done
}

cmd_down() {
	need_root
	stop_all
	rm -f "$RUN"/fault.* "$RUN/cdp.garbage"
	local left
	left=$(ss -Hltnup 2>/dev/null | awk '{print $5}' | grep -E '^127\.0\.0\.[2-9]:' || true)
	if [[ -n $left ]]; then
		log "warning: still listening after down: $(echo "$left" | tr '\n' ' ')"
		return 1
	fi
	log "down"
}

cmd_status() {
	local n pid rc=0
	for n in samba kdcfwd ldapfwd cdp apache sogod dovecot postgres memcached sogoapache slapd mitkdc; do
		if pid=$(pid_of "$n"); then
			printf '%-10s running  pid %s\n' "$n" "$pid"
		elif [[ -e $RUN/fault.$n ]]; then
			printf '%-10s stopped  (fault on)\n' "$n"
		elif [[ -e $RUN/$n.pid ]]; then
			printf '%-10s DEAD     (pid file left)\n' "$n"
			rc=1
		fi
	done
	for n in kdc ldap cdp exchange; do
		if [[ -e $RUN/fault.$n ]]; then
			printf 'fault %-8s %s\n' "$n" "$(cat "$RUN/fault.$n")"
		fi
	done
	echo "listeners:"
	ss -Hltnup 2>/dev/null | awk '$5 ~ /^127\.0\.0\.[2-9]:/ {print "  " $1 " " $5}' | sort -u
	return $rc
}

cmd_env() {
	[[ -e $SAMBA/.provisioned ]] || die "the lab is not provisioned: run lab.sh up"
	write_env
	cat "$STATE/lab.env"
}

cmd_revoke() {
	need_root
	local user=${1:?revoke USER}
	local cert=$PKI/users/$user/cert.pem
	[[ -s $cert ]] || die "no device certificate for $user"
	build_labtool
	"$BIN/labtool" revoke -dir "$PKI" -cert "$cert" 2>>"$LOG/pki.log"
	publish_crls
}

# cmd_svc_password: `svc-password NEW` sets svc_seg's password in the domain
# to NEW (a rotation, as an administrator does it); `svc-password --reset`
# puts back the one in $SECRETS/svc that every test uses.
cmd_svc_password() {
	local pw=${1:?svc-password NEW|--reset}
	[[ $pw == --reset ]] && pw=$(cat "$SECRETS/svc")
	samba-tool user setpassword svc_seg --newpassword="$pw" -H "$SAMBA/private/sam.ldb" -s "$SMBCONF" \
		>>"$LOG/accounts.log" 2>&1 || die "setting svc_seg's password failed, see $LOG/accounts.log"
}

cmd_fault() {
	need_root
	local what=${1:?fault kdc|ldap|cdp|exchange on|off} how=${2:?on|off}
	case $what:$how in
	kdc:on) echo on >"$RUN/fault.kdc"; stop_daemon kdcfwd 5 ;;
	kdc:off) rm -f "$RUN/fault.kdc"; resume kdcfwd; start_kdc_fwd; wait_tcp "$KDC_FWD_IP" 88 10 ;;
	ldap:on) echo on >"$RUN/fault.ldap"; stop_daemon ldapfwd 5 ;;
	ldap:off) rm -f "$RUN/fault.ldap"; resume ldapfwd; start_ldap_fwd; wait_tcp "$LDAP_FWD_IP" 389 10 ;;
	kdc:hang | ldap:hang)
		# The forwarder is frozen (SIGSTOP): connections are accepted by the
		# kernel and never answered, UDP requests vanish. Tests of timeouts.
		local fwd=${what}fwd
		[[ $what == kdc ]] && start_kdc_fwd || start_ldap_fwd
		echo hang >"$RUN/fault.$what"
		kill -STOP "$(pid_of "$fwd")"
		;;
	cdp:on) echo on >"$RUN/fault.cdp"; stop_daemon cdp 5 ;;
	cdp:garbage)
		echo garbage >"$RUN/fault.cdp"
		touch "$RUN/cdp.garbage"
		local f
		for f in "$PKI"/crl/*.crl; do
			head -c 700 /dev/urandom >"$CDP/$(basename "$f")"
		done
		start_cdp
		wait_tcp "$CDP_IP" 80 10
		;;
	cdp:off)
		rm -f "$RUN/fault.cdp" "$RUN/cdp.garbage"
		publish_crls
		start_cdp
		wait_tcp "$CDP_IP" 80 10
		;;
	exchange:on) echo on >"$RUN/fault.exchange"; stop_daemon apache 10 ;;
	exchange:off) rm -f "$RUN/fault.exchange"; start_apache; wait_tcp "$EXCHANGE_IP" 80 10 ;;
	*) die "fault: unknown $what $how" ;;
	esac
}

# lock: one lab.sh at a time changes a lab (test binaries run in parallel).
lock() {
	mkdir -p "$(dirname "$STATE")"
	exec 9>"${STATE%/}.lock"
	flock -w 600 9 || die "another lab.sh holds ${STATE%/}.lock"
}

# close_inherited_fds: closes every descriptor above 2 that lab.sh was
# handed (bash's own 255 aside). A caller's lock, such as the fd of
# `flock /tmp/segmesh-lab.lock lab.sh up`, would otherwise be inherited by
# every daemon up starts and held until `down`, blocking every other user.
close_inherited_fds() {
	local fd
	for fd in /proc/$$/fd/*; do
		fd=${fd##*/}
		[[ $fd =~ ^[0-9]+$ ]] && ((fd > 2 && fd != 255)) && eval "exec $fd>&-" 2>/dev/null || true
	done
}

main() {
	close_inherited_fds
	local cmd=${1:-}
	shift || true
	case $cmd in
	up | down | revoke | fault | svc-password)
		trap 'on_exit $? "$BASH_COMMAND"' EXIT
		need_root
		lock
		;;
	env) [[ -w $(dirname "$STATE") ]] && lock ;;
	esac
	case $cmd in
	up) cmd_up "$@" ;;
	down) cmd_down "$@" ;;
	status) cmd_status "$@" ;;
	env) cmd_env "$@" ;;
	revoke) cmd_revoke "$@" ;;
	fault) cmd_fault "$@" ;;
	svc-password) cmd_svc_password "$@" ;;
	*)
		sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
		[[ -z $cmd || $cmd == help || $cmd == -h || $cmd == --help ]] || exit 2
		;;
	esac
}

main "$@"
