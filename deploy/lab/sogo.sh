# sogo.sh: SOGo ActiveSync for the lab (lab.sh up --with-sogo), sourced by
# lab.sh. A real EAS server behind Apache Negotiate, with PostgreSQL,
# memcached and Dovecot, all on 127.0.0.7.
#
# Kerberos: the SOGo Apache accepts tickets for HTTP/exchange.lab.test (the
# same keytab as the stand-in), so svc_seg stays delegable to that one SPN
# and an edge pointed at https://sogo.lab.test with its usual target SPN
# reaches SOGo. A client of its own must ask for that SPN, e.g.
# curl --negotiate --connect-to exchange.lab.test:443:sogo.lab.test:443
# https://exchange.lab.test/... (the SOGo certificate names both).
#
# SOGo's configuration is /etc/sogo/sogo.conf (sogod reads only that path);
# the lab writes it (the package's own is saved as sogo.conf.segmesh-orig).

SOGO=$STATE/sogo
PG_BIN=/usr/lib/postgresql/15/bin
PG_DATA=$SOGO/pg
PG_RUN=$SOGO/pgrun
SOGO_PORT=20000

as_user() {
	local u=$1
	shift
	setpriv --reuid="$u" --regid="$u" --init-groups "$@"
}

psql_admin() { as_user postgres "$PG_BIN/psql" -qtA -h "$PG_RUN" -U postgres "$@"; }

sogo_provision() {
	[[ -e $SOGO/.provisioned ]] && return 0
	rm -rf "$SOGO"
	mkdir -p "$SOGO" "$PG_RUN" "$SOGO/home" "$SOGO/mail" "$SOGO/dovecot-run" "$SOGO/spool"
	chmod 755 "$SOGO"
	secret sogo_db
	chown postgres:postgres "$PG_RUN"
	install -d -o postgres -g postgres -m 700 "$PG_DATA"
	as_user postgres "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth-local=trust \
		--auth-host=scram-sha-256 --no-sync -E UTF8 --locale=C.UTF-8 >"$LOG/initdb.log" 2>&1 ||
		die "initdb failed, see $LOG/initdb.log"
	sogo_start_postgres
	wait_tcp "$SOGO_IP" 5432 30 || die "postgres did not start (see $LOG/postgres.log)"
	local pw
	pw=$(cat "$SECRETS/sogo_db")
	psql_admin -d postgres >>"$LOG/initdb.log" 2>&1 <<EOF || die "creating the SOGo database failed"
CREATE ROLE sogo LOGIN PASSWORD '$pw';
CREATE DATABASE sogo OWNER sogo;
EOF
	# SOGo 5.8 reads sogo_cache_folder but never creates it: without it Sync
	# answers Status 13. 5.8's layout (c_path key, no c_uid; 5.9 added c_uid).
	psql_admin -d sogo >>"$LOG/initdb.log" 2>&1 <<EOF || die "creating sogo_cache_folder failed"
CREATE TABLE sogo_cache_folder (
	c_path VARCHAR(255) PRIMARY KEY,
	c_parent_path VARCHAR(255),
	c_type SMALLINT NOT NULL,
	c_creationdate INT4 NOT NULL,
	c_lastmodified INT4 NOT NULL,
	c_version INT4 NOT NULL DEFAULT 0,
	c_deleted SMALLINT NOT NULL DEFAULT 0,
	c_content TEXT
);
ALTER TABLE sogo_cache_folder OWNER TO sogo;
EOF
	sogo_seed_mail
	touch "$SOGO/.provisioned"
}

# sogo_seed_mail: a few messages in alice's and bob's INBOX (Maildir).
sogo_seed_mail() {
	local u i d
	for u in alice bob; do
		d=$SOGO/mail/$u/Maildir
		mkdir -p "$d/cur" "$d/new" "$d/tmp"
		for i in 1 2 3; do
			cat >"$d/new/$((1700000000 + i)).M${i}P1.lab" <<EOF
From: carol@lab.test
To: $u@lab.test
Subject: lab message $i for $u
Date: Tue, 14 Nov 2023 22:13:2$i +0000
Message-ID: <lab-$u-$i@lab.test>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Seeded lab message $i.
EOF
		done
	done
	chown -R mail:mail "$SOGO/mail"
}

# sogo_enable_modseq: Dovecot sends HIGHESTMODSEQ on a plain SELECT only once
# a client has used CONDSTORE on the mailbox; SOGo never does, and without it
# its collection tag is -1 and Sync after the first returns nothing. One
# CONDSTORE select per seeded INBOX turns tracking on for good.
sogo_enable_modseq() {
	[[ -e $SOGO/.modseq ]] && return 0
	python3 - "$SOGO_IP" alice bob <<'EOF' >>"$LOG/dovecot.log" 2>&1 || die "enabling CONDSTORE failed"
import imaplib, sys
for user in sys.argv[2:]:
    m = imaplib.IMAP4(sys.argv[1], 143)
    m.login(user, "")
    m._simple_command("ENABLE", "CONDSTORE")
    m._simple_command("SELECT", "INBOX", "(CONDSTORE)")
    m.logout()
EOF
	touch "$SOGO/.modseq"
}

sogo_start_postgres() {
	start_daemon postgres /usr/bin/setpriv --reuid=postgres --regid=postgres --init-groups \
		"$PG_BIN/postgres" -D "$PG_DATA" -c listen_addresses="$SOGO_IP" -c port=5432 \
		-c unix_socket_directories="$PG_RUN" -c fsync=off -c synchronous_commit=off \
		-c full_page_writes=off -c max_connections=50 -c shared_buffers=32MB
	# setpriv execs postgres: record the real program.
	echo "$(cut -d' ' -f1 "$RUN/postgres.pid") $PG_BIN/postgres" >"$RUN/postgres.pid"
}

sogo_write_dovecot_conf() {
	cat >"$SOGO/dovecot.conf" <<EOF
# segmesh lab: IMAP for SOGo on $SOGO_IP only. Any password is accepted
# (SOGo behind proxy authentication has none): loopback lab only.
base_dir = $SOGO/dovecot-run
state_dir = $SOGO/dovecot-state
protocols = imap
listen = $SOGO_IP
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
# SOGo reads the capabilities announced before login: without CONDSTORE there
# its mail collection tag is -1 and every Sync after the first is empty.
imap_capability = +CONDSTORE QRESYNC
log_path = $LOG/dovecot.log
mail_location = maildir:~/Maildir
mail_uid = mail
mail_gid = mail
first_valid_uid = 8
first_valid_gid = 8
passdb {
	driver = static
	args = nopassword=y
}
userdb {
	driver = static
	args = uid=mail gid=mail home=$SOGO/mail/%n
}
service imap-login {
	inet_listener imap {
		address = $SOGO_IP
		port = 143
	}
	inet_listener imaps {
		port = 0
	}
}
service stats {
	unix_listener stats-reader {
		mode = 0666
	}
	unix_listener stats-writer {
		mode = 0666
	}
}
EOF
	mkdir -p "$SOGO/dovecot-state"
}

sogo_write_conf() {
	local pw db
	pw=$(cat "$SECRETS/svc")
	db="postgresql://sogo:$(cat "$SECRETS/sogo_db")@$SOGO_IP:5432/sogo"
	if [[ -e /etc/sogo/sogo.conf && ! -e /etc/sogo/sogo.conf.segmesh-orig ]]; then
		cp -p /etc/sogo/sogo.conf /etc/sogo/sogo.conf.segmesh-orig
	fi
	cat >/etc/sogo/sogo.conf.tmp <<EOF
/* segmesh lab (deploy/lab/sogo.sh): rewritten by lab.sh up --with-sogo */
{
  WOPort = "$SOGO_IP:$SOGO_PORT";
  WOWorkersCount = 4;
  WOLogFile = "$LOG/sogo.log";
  WOPidFile = "$SOGO/home/sogod.pid";
  WOWatchDogRequestTimeout = 60;
  SOGoProfileURL = "$db/sogo_user_profile";
  OCSFolderInfoURL = "$db/sogo_folder_info";
  OCSSessionsFolderURL = "$db/sogo_sessions_folder";
  OCSCacheFolderURL = "$db/sogo_cache_folder";
  OCSEMailAlarmsFolderURL = "$db/sogo_alarms_folder";
  SOGoMemcachedHost = "$SOGO_IP";
  SOGoTrustProxyAuthentication = YES;
  SOGoMaximumPingInterval = 3540;
  SOGoMaximumSyncInterval = 3540;
  SOGoInternalSyncInterval = 10;
  SOGoMailDomain = "lab.test";
  SOGoIMAPServer = "imap://$SOGO_IP:143";
  SOGoSMTPServer = "smtp://$SOGO_IP:25";
  SOGoMailingMechanism = smtp;
  SOGoTimeZone = UTC;
  SOGoLanguage = English;
  SOGoEnableEMailAlarms = NO;
  SOGoAppointmentSendEMailNotifications = NO;
  SOGoUserSources = (
    {
      type = ldap;
      id = lab;
      displayName = "Lab";
      hostname = "ldap://dc1.lab.test:389";
      baseDN = "CN=Users,DC=lab,DC=test";
      bindDN = "CN=svc_seg,CN=Users,DC=lab,DC=test";
      bindPassword = "$pw";
      canAuthenticate = YES;
      isAddressBook = NO;
      CNFieldName = displayName;
      IDFieldName = sAMAccountName;
      UIDFieldName = sAMAccountName;
      IMAPLoginFieldName = sAMAccountName;
      MailFieldNames = (mail);
      bindFields = (sAMAccountName);
      filter = "objectClass = 'user'";
    }
  );
}
EOF
	# sogod refuses a sogo.conf it cannot read or others can: root:sogo 0640.
	chown root:sogo /etc/sogo/sogo.conf.tmp
	chmod 640 /etc/sogo/sogo.conf.tmp
	mv /etc/sogo/sogo.conf.tmp /etc/sogo/sogo.conf
}

sogo_write_apache_conf() {
	local m=/usr/lib/apache2/modules A=$SOGO/apache
	mkdir -p "$A/run"
	cat >"$A/httpd.conf" <<EOF
# segmesh lab: Apache Negotiate in front of SOGo (its own config file).
ServerRoot "$A"
ServerName sogo.lab.test
PidFile "$RUN/sogoapache.pid"
DefaultRuntimeDir "$A/run"
Mutex file:$A/run default
ErrorLog "$LOG/sogo-apache-error.log"
LogLevel warn
User www-data
Group www-data
LoadModule mpm_event_module $m/mod_mpm_event.so
LoadModule authz_core_module $m/mod_authz_core.so
LoadModule authn_core_module $m/mod_authn_core.so
LoadModule authz_user_module $m/mod_authz_user.so
LoadModule auth_gssapi_module $m/mod_auth_gssapi.so
LoadModule headers_module $m/mod_headers.so
LoadModule proxy_module $m/mod_proxy.so
LoadModule proxy_http_module $m/mod_proxy_http.so
LoadModule ssl_module $m/mod_ssl.so
LoadModule socache_shmcb_module $m/mod_socache_shmcb.so
ServerLimit 8
ThreadsPerChild 64
MaxRequestWorkers 512
Timeout 3700
ProxyTimeout 3700
LogFormat "%a %u %t \"%r\" %>s %B %D" lab
CustomLog "$LOG/sogo-apache-access.log" lab
Listen $SOGO_IP:80
Listen $SOGO_IP:443
SSLSessionCache shmcb:$A/run/ssl_scache(512000)
<VirtualHost $SOGO_IP:443>
	SSLEngine on
	SSLCertificateFile "$PKI/servers/sogo/cert.pem"
	SSLCertificateKeyFile "$PKI/servers/sogo/key.pem"
	RequestHeader set x-webobjects-server-port "443"
	RequestHeader set x-webobjects-server-url "https://sogo.lab.test"
</VirtualHost>
RequestHeader set x-webobjects-server-name "sogo.lab.test"
RequestHeader set x-webobjects-server-protocol "HTTP/1.0"
<Location /Microsoft-Server-ActiveSync>
	AuthType GSSAPI
	AuthName "SOGo"
	GssapiCredStore keytab:$APACHE/exchange.keytab
	GssapiAllowedMech krb5
	GssapiBasicAuth Off
	# alice@LAB.TEST -> alice, the name SOGo knows.
	GssapiLocalName On
	Require valid-user
	RequestHeader unset Authorization
	RequestHeader set x-webobjects-remote-user "expr=%{REMOTE_USER}"
	ProxyPass http://$SOGO_IP:$SOGO_PORT/SOGo/Microsoft-Server-ActiveSync retry=0 timeout=3700
</Location>
EOF
}

sogo_start() {
	sogo_start_postgres
	start_daemon memcached /usr/bin/memcached -l "$SOGO_IP" -p 11211 -U 0 -u memcache -m 64
	sogo_write_dovecot_conf
	start_daemon dovecot /usr/sbin/dovecot -F -c "$SOGO/dovecot.conf"
	sogo_write_conf
	touch "$LOG/sogo.log"
	chown sogo "$LOG/sogo.log" "$SOGO/home" "$SOGO/spool"
	if ! running sogod; then
		start_daemon sogod /usr/bin/setpriv --reuid=sogo --regid=sogo --init-groups \
			/usr/bin/env HOME="$SOGO/home" /usr/sbin/sogod -WONoDetach YES
		echo "$(cut -d' ' -f1 "$RUN/sogod.pid") /usr/sbin/sogod" >"$RUN/sogod.pid"
	fi
	if ! running sogoapache; then
		sogo_write_apache_conf
		rm -f "$RUN/sogoapache.pid"
		env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin KRB5_CONFIG="$STATE/krb5.conf" \
			KRB5RCACHEDIR="$APACHE/rcache" LANG=C \
			/usr/sbin/apache2 -f "$SOGO/apache/httpd.conf" -k start </dev/null >>"$LOG/sogo-apache.log" 2>&1 9>&- ||
			die "SOGo's apache failed to start, see $LOG/sogo-apache.log"
		local i
		for ((i = 0; i < 100; i++)); do
			[[ -s $RUN/sogoapache.pid ]] && break
			sleep 0.05
		done
		echo "$(cat "$RUN/sogoapache.pid") /usr/sbin/apache2" >"$RUN/sogoapache.pid.tmp"
		mv "$RUN/sogoapache.pid.tmp" "$RUN/sogoapache.pid"
	fi
	wait_tcp "$SOGO_IP" 143 20 || die "dovecot is not listening (see $LOG/dovecot.log)"
	sogo_enable_modseq
	wait_tcp "$SOGO_IP" "$SOGO_PORT" 30 || die "sogod is not listening (see $LOG/sogo.log)"
	wait_tcp "$SOGO_IP" 443 10 || die "SOGo's apache is not listening"
}

sogo_up() {
	sogo_provision
	sogo_start
}

sogo_down() {
	local n
	stop_daemon sogoapache 10
	# sogod's watchdog waits ~30 s after its workers are gone before it exits;
	# nothing of the lab's SOGo state needs that grace.
	stop_daemon sogod 3
	for n in dovecot memcached postgres; do
		stop_daemon "$n" 20
	done
}
