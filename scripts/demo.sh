#!/usr/bin/env bash
# The demo: brings up the lab (Samba AD DC, Exchange stand-in, PKI, CDP on
# 127.0.0.x), starts segmesh all-in-one on the lab's config, and sends real
# ActiveSync requests through it with device certificates:
#   alice  — UPN from her certificate's SAN
#   bob    — certificate without UPN, found by LDAP certificate mapping (bob.smith@lab.test)
#   mallory — certificate SAN names alice, published on mallory: the mapping wins
#   alice-revoked — a certificate on the lab CRL: refused in the TLS handshake
# Exchange (Apache + mod_auth_gssapi with the exported keytab) answers with
# the user it authenticated from segmesh's Kerberos ticket.
# segmesh is stopped at the end (by its PID); the lab stays up: `bash deploy/lab/lab.sh down`.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

bash deploy/lab/lab.sh up
env_file=$(bash deploy/lab/lab.sh env >/dev/null; echo "${SEGMESH_LAB_DIR:-/var/tmp/segmesh-lab}/lab.env")
lab() { grep -m1 "^$1=" "$env_file" | cut -d= -f2-; }

echo "== building segmesh"
mkdir -p bin
go build -o bin/segmesh ./cmd/segmesh

dir=$(lab LAB_DIR)/segmesh
cfg=$(lab LAB_SEGMESH_CONFIG)
pidfile=$dir/demo.pid
logfile=$dir/demo.log
if [[ -s $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "stopping the segmesh a previous demo left (pid $(cat "$pidfile"))"
  kill -TERM "$(cat "$pidfile")"; sleep 1
fi
echo "== segmesh config check $cfg"
"$repo/bin/segmesh" config check -q "$cfg" || true

echo "== starting segmesh run (all roles in one process); log: $logfile"
"$repo/bin/segmesh" run --config "$cfg" >"$logfile" 2>&1 &
echo $! >"$pidfile"
stop() {
  if [[ -s $pidfile ]]; then
    kill -TERM "$(cat "$pidfile")" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
    rm -f "$pidfile"
  fi
}
trap stop EXIT

admin=127.0.0.1:9090
for i in $(seq 120); do
  if curl -fsS "http://$admin/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then echo "segmesh exited:"; tail -30 "$logfile"; exit 1; fi
  sleep 0.25
  [[ $i == 120 ]] && { echo "segmesh not ready after 30 s:"; curl -sS "http://$admin/readyz" || true; tail -30 "$logfile"; exit 1; }
done
curl -sS "http://$admin/readyz"

edge="https://$(lab LAB_EDGE_HOST):8443"
ask() { # user path
  local u=${1^^} out
  out=$(curl -sS 2>&1 --max-time 20 --cacert "$(lab LAB_SERVER_CA)" --cert "$(lab LAB_CERT_$u)" --key "$(lab LAB_KEY_$u)" \
    -H 'Content-Type: application/vnd.ms-sync.wbxml' -H 'MS-ASProtocolVersion: 14.1' -H 'User-Agent: segmesh-demo' \
    -H 'Authorization: Basic ZGV2aWNlOnBhc3N3b3Jk' \
    -X POST --data-binary 'demo-body' -w '\n%{http_code}' "$edge$2")
  python3 - "$out" <<'PY'
import json, sys
body, _, code = sys.argv[1].rpartition("\n")
try:
    r = json.loads(body)
except ValueError:
    print(f"HTTP {code}: {body[:300]}")
    sys.exit(0)
print(f"HTTP {code}: Exchange authenticated {r['remote_user']} by {r['auth_type']} for {r['method']} {r['path']}"
      f"{'?' + r['query'] if r['query'] else ''}; body {r['body_length']} bytes; "
      f"device's Basic header reached Exchange: {r['other_authorization']}")
PY
}
echo
echo "== alice: ActiveSync FolderSync, UPN from her certificate"
ask alice "/Microsoft-Server-ActiveSync?Cmd=FolderSync&User=alice&DeviceId=DEMO0001&DeviceType=iPhone"
echo
echo "== bob: certificate without UPN, mapped by LDAP userCertificate"
ask bob "/Microsoft-Server-ActiveSync?Cmd=Sync&User=bob&DeviceId=DEMO0002&DeviceType=Android"
echo
echo "== alice again: EWS, ticket from the edge's cache, fresh authenticator"
ask alice "/EWS/Exchange.asmx"
echo
echo "== mallory: her certificate's SAN names alice, but it is published on mallory's userCertificate: mapping wins"
ask mallory "/Microsoft-Server-ActiveSync?Cmd=Ping&User=mallory&DeviceId=DEMO0003&DeviceType=iPad"
echo
echo "== alice's revoked certificate (listed on the lab CRL): refused in the handshake (the log names serial and issuer)"
ask alice_revoked "/Microsoft-Server-ActiveSync?Cmd=Sync&User=alice&DeviceId=DEMO0004&DeviceType=iPhone" 2>&1 || true
echo
echo "== segmesh log (last lines)"
tail -8 "$logfile"
echo
echo "demo done: segmesh stopped; the lab stays up (bash deploy/lab/lab.sh down stops it)"
