#!/bin/bash
# eas-client.sh: a real Exchange ActiveSync client made of curl and
# xml2wbxml/wbxml2xml (libwbxml2-utils). It speaks EAS 14.1 to the edge (with
# a device certificate) or straight to SOGo (with Kerberos).
#
#   eas-client.sh [options] options|provision|foldersync|foldersync-b64|sync [ID]|ping [SECONDS]|all
#
# Options:
#   --url URL             server base URL (default https://exchange.lab.test)
#   --cert FILE --key FILE  device certificate for the edge's mTLS
#   --cacert FILE         CA for the server certificate
#   --negotiate           authenticate with Kerberos from KRB5CCNAME (straight to SOGo)
#   --connect-to H:P:H2:P2  curl --connect-to (reach SOGo as exchange.lab.test)
#   --user NAME           User= in the query (default alice)
#   --device-id ID        DeviceId (default LABDEVICE0001)
#   --device-type TYPE    DeviceType (default SmartPhone)
#   --state DIR           policy key, sync keys, folder ids (default /tmp/eas-client-USER-DEVICEID)
#   -v                    also print the XML sent
#
# Each command prints the decoded XML answer and fails unless the answer's
# Status is a success (Ping: 1 no change, 2 changes). State carries over
# between calls, so `provision` then `foldersync` then `sync` then `ping` works.
# Example against SOGo (lab.sh up --with-sogo), with alice's delegated ticket:
#   KRB5CCNAME=FILE:/tmp/alice.cc deploy/lab/eas-client.sh --negotiate \
#     --cacert "$LAB_SOGO_CA" --connect-to exchange.lab.test:443:sogo.lab.test:443 all
set -euo pipefail

URL=https://exchange.lab.test
USER_NAME=alice
DEVICE_ID=LABDEVICE0001
DEVICE_TYPE=SmartPhone
VERSION=14.1
STATE_DIR=
VERBOSE=
CURL_AUTH=()

die() { echo "eas-client: $*" >&2; exit 1; }

while (($#)); do
	case $1 in
	--url) URL=${2%/}; shift 2 ;;
	--cert) CURL_AUTH+=(--cert "$2"); shift 2 ;;
	--key) CURL_AUTH+=(--key "$2"); shift 2 ;;
	--cacert) CURL_AUTH+=(--cacert "$2"); shift 2 ;;
	--negotiate) CURL_AUTH+=(--negotiate -u :); shift ;;
	--connect-to) CURL_AUTH+=(--connect-to "$2"); shift 2 ;;
	--user) USER_NAME=$2; shift 2 ;;
	--device-id) DEVICE_ID=$2; shift 2 ;;
	--device-type) DEVICE_TYPE=$2; shift 2 ;;
	--state) STATE_DIR=$2; shift 2 ;;
	-v) VERBOSE=1; shift ;;
	-*) die "unknown option $1" ;;
	*) break ;;
	esac
done
(($#)) || die "usage: eas-client.sh [options] options|provision|foldersync|foldersync-b64|sync [ID]|ping [SECONDS]|all"
command -v xml2wbxml >/dev/null || die "xml2wbxml missing: apt-get install libwbxml2-utils"
STATE_DIR=${STATE_DIR:-/tmp/eas-client-$USER_NAME-$DEVICE_ID}
mkdir -p "$STATE_DIR"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

get() { cat "$STATE_DIR/$1" 2>/dev/null || echo "${2:-}"; }
put() { printf '%s' "$2" >"$STATE_DIR/$1"; }

# xq FILE TAG: the text of the first element named TAG (any namespace).
xq() {
	python3 - "$1" "$2" <<'EOF'
import sys, xml.etree.ElementTree as ET
for e in ET.parse(sys.argv[1]).iter():
    if e.tag.rsplit("}", 1)[-1] == sys.argv[2]:
        print((e.text or "").strip())
        break
EOF
}

# folder_of FILE TYPE: the ServerId of the first folder of that EAS type
# (2 Inbox) in a FolderSync answer.
folder_of() {
	python3 - "$1" "$2" <<'EOF'
import sys, xml.etree.ElementTree as ET
local = lambda e: e.tag.rsplit("}", 1)[-1]
for e in ET.parse(sys.argv[1]).iter():
    if local(e) == "Add":
        kids = {local(k): (k.text or "").strip() for k in e}
        if kids.get("Type") == sys.argv[2]:
            print(kids.get("ServerId", ""))
            break
EOF
}

# b64query CMDCODE: MS-ASHTTP 2.2.1.1.1.1 base64-encoded query value.
b64query() {
	python3 - "$1" "$VERSION" "$DEVICE_ID" "$(get policykey)" "$DEVICE_TYPE" "$USER_NAME" <<'EOF'
import base64, struct, sys
cmd, ver, dev, pk, dtype, user = sys.argv[1:]
b = bytes([int(ver.replace(".", "")), int(cmd)]) + struct.pack("<H", 0x0409)
b += bytes([len(dev)]) + dev.encode()
b += (bytes([4]) + struct.pack("<I", int(pk))) if pk else bytes([0])
b += bytes([len(dtype)]) + dtype.encode()
b += bytes([8, len(user)]) + user.encode()  # parameter 8: User
# Sent as is, like devices do ('/' and '=' are legal in a query; SOGo does not
# percent-decode it). '+' would read as a space, so it is the one escaped.
print(base64.b64encode(b).decode().replace("+", "%2B"))
EOF
}

# post CMD XMLFILE [b64]: send one EAS command, decode the answer to $TMP/resp.xml.
post() {
	local cmd=$1 xml=$2 mode=${3:-} q code pk
	local -a hdr=(-H "User-Agent: segmesh-lab-eas/1.0" -H "Content-Type: application/vnd.ms-sync.wbxml")
	if [[ $mode == b64 ]]; then
		case $cmd in
		FolderSync) code=9 ;;
		Sync) code=0 ;;
		Ping) code=18 ;;
		Provision) code=20 ;;
		*) die "no command code for $cmd" ;;
		esac
		q=$(b64query "$code")
	else
		q="Cmd=$cmd&User=$USER_NAME&DeviceId=$DEVICE_ID&DeviceType=$DEVICE_TYPE"
		hdr+=(-H "MS-ASProtocolVersion: $VERSION")
		pk=$(get policykey)
		[[ -n $pk ]] && hdr+=(-H "X-MS-PolicyKey: $pk")
	fi
	[[ -n $VERBOSE ]] && { echo "--> $cmd"; cat "$xml"; } >&2
	xml2wbxml -a -n -v 1.3 -o "$TMP/req.wbxml" "$xml" >"$TMP/x2w.log" 2>&1 || die "$cmd: xml2wbxml: $(cat "$TMP/x2w.log")"
	local status
	status=$(curl -sS "${CURL_AUTH[@]}" -X POST "${hdr[@]}" --data-binary "@$TMP/req.wbxml" \
		-o "$TMP/resp.wbxml" -w '%{http_code}' --max-time 3700 "$URL/Microsoft-Server-ActiveSync?$q") ||
		die "$cmd: curl failed"
	[[ $status == 200 ]] || die "$cmd: HTTP $status"
	if [[ ! -s $TMP/resp.wbxml ]]; then
		echo '<?xml version="1.0"?><Empty/>' >"$TMP/resp.xml"
	else
		wbxml2xml -l ACTIVESYNC -o "$TMP/resp.xml" "$TMP/resp.wbxml" >/dev/null 2>&1 ||
			die "$cmd: answer is not ActiveSync WBXML"
	fi
	echo "<-- $cmd"
	cat "$TMP/resp.xml"
	echo
}

xmlfile() {
	{
		echo '<?xml version="1.0" encoding="utf-8"?>'
		echo '<!DOCTYPE ActiveSync PUBLIC "-//MICROSOFT//DTD ActiveSync//EN" "http://www.microsoft.com/">'
		cat
	} >"$TMP/req.xml"
	echo "$TMP/req.xml"
}

want_status() {
	local got
	got=$(xq "$TMP/resp.xml" Status)
	local ok
	for ok in "$@"; do [[ $got == "$ok" ]] && return 0; done
	die "Status $got, want one of: $*"
}

do_options() {
	local h
	h=$(curl -sS "${CURL_AUTH[@]}" -X OPTIONS -D - -o /dev/null "$URL/Microsoft-Server-ActiveSync") || die "OPTIONS: curl failed"
	echo "$h"
	grep -qi '^MS-ASProtocolVersions:' <<<"$h" || die "OPTIONS: no MS-ASProtocolVersions"
}

do_provision() {
	put policykey ""
	post Provision "$(xmlfile <<'EOF'
<Provision xmlns="Provision:"><Policies><Policy><PolicyType>MS-EAS-Provisioning-WBXML</PolicyType></Policy></Policies></Provision>
EOF
)"
	want_status 1
	local temp
	temp=$(xq "$TMP/resp.xml" PolicyKey)
	if [[ -z $temp ]]; then
		# Policy Status 2: the server defines no policy (SOGo's default);
		# the device goes on without a policy key.
		echo "(no policy: continuing without X-MS-PolicyKey)"
		return 0
	fi
	put policykey "$temp"
	post Provision "$(xmlfile <<EOF
<Provision xmlns="Provision:"><Policies><Policy><PolicyType>MS-EAS-Provisioning-WBXML</PolicyType><PolicyKey>$temp</PolicyKey><Status>1</Status></Policy></Policies></Provision>
EOF
)"
	want_status 1
	local final
	final=$(xq "$TMP/resp.xml" PolicyKey)
	put policykey "${final:-$temp}"
}

do_foldersync() {
	post FolderSync "$(xmlfile <<EOF
<FolderSync xmlns="FolderHierarchy:"><SyncKey>$(get foldersynckey 0)</SyncKey></FolderSync>
EOF
)" "${1:-}"
	want_status 1
	put foldersynckey "$(xq "$TMP/resp.xml" SyncKey)"
	local inbox
	inbox=$(folder_of "$TMP/resp.xml" 2)
	[[ -n $inbox ]] && put inbox "$inbox"
	return 0
}

do_foldersync_b64() {
	# A fresh hierarchy (SyncKey 0), so the folder list comes back again.
	put foldersynckey 0
	do_foldersync b64
}

do_sync() {
	local id=${1:-$(get inbox)}
	[[ -n $id ]] || die "sync: no collection id (run foldersync first)"
	local key
	key=$(get "synckey-$id" 0)
	if [[ $key == 0 ]]; then
		post Sync "$(xmlfile <<EOF
<Sync xmlns="AirSync:"><Collections><Collection><SyncKey>0</SyncKey><CollectionId>$id</CollectionId><Options><FilterType>3</FilterType></Options></Collection></Collections></Sync>
EOF
)"
		want_status 1
		key=$(xq "$TMP/resp.xml" SyncKey)
		put "synckey-$id" "$key"
	fi
	# FilterType 3 (one week... SOGo returns nothing for 0, "all").
	post Sync "$(xmlfile <<EOF
<Sync xmlns="AirSync:"><Collections><Collection><SyncKey>$key</SyncKey><CollectionId>$id</CollectionId><DeletesAsMoves>1</DeletesAsMoves><GetChanges>1</GetChanges><WindowSize>50</WindowSize><Options><FilterType>3</FilterType></Options></Collection></Collections></Sync>
EOF
)"
	if grep -q '<Empty/>' "$TMP/resp.xml"; then
		return 0 # nothing changed: an empty answer is a success
	fi
	want_status 1
	put "synckey-$id" "$(xq "$TMP/resp.xml" SyncKey)"
}

do_ping() {
	local secs=${1:-60} id
	id=$(get inbox)
	[[ -n $id ]] || die "ping: no folder id (run foldersync first)"
	post Ping "$(xmlfile <<EOF
<Ping xmlns="Ping:"><HeartbeatInterval>$secs</HeartbeatInterval><Folders><Folder><Id>$id</Id><Class>Email</Class></Folder></Folders></Ping>
EOF
)"
	want_status 1 2
}

cmd=$1
shift
case $cmd in
options) do_options ;;
provision) do_provision ;;
foldersync) do_foldersync ;;
foldersync-b64) do_foldersync_b64 ;;
sync) do_sync "$@" ;;
ping) do_ping "$@" ;;
all)
	do_options
	do_provision
	do_foldersync
	do_foldersync_b64
	do_sync
	# A second Sync acknowledges the first one's key, so the Ping holds
	# (Status 1) instead of reporting those same changes (Status 2).
	do_sync
	do_ping "${1:-10}"
	;;
*) die "unknown command $cmd" ;;
esac
