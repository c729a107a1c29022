#!/usr/bin/env bash
# bench/run.sh — segmesh side by side with the alternatives (issue 11), in one
# run, on this machine, against the same backend with the same TLS settings:
#   (a) bare   a tuned Go httputil.ReverseProxy with mTLS (bench/cmd/bareproxy): the floor
#   (b) nginx  Debian's nginx as mTLS reverse proxy (no Kerberos: it cannot do KCD)
#   (c) aio    segmesh all-in-one (`segmesh run`), hot path (caches warmed first), with
#              its default HTTP/1.1 engine, the relay (issue 25)
#   (d) split  segmesh split mode: `--roles=edge` and `--roles=crl,identity,ticket`
#   (e) nethttp  segmesh all-in-one with segmesh.edge.http1Engine "net/http", the
#              engine before the relay, on 127.0.0.27 when PROXIES names it (e.g.
#              PROXIES="bare nginx nethttp aio"; aio / nethttp per round)
#   (a2) bareloop  the bare proxy with -device-loop, when PROXIES names it: the
#              same ReverseProxy behind a per-connection http.ReadRequest loop
#              instead of net/http's server (issue 25's stage B, measured), on 127.0.0.26
#   (f) fasthttp  issue 25's candidate when PROXIES names it: fasthttp's Server and
#              HostClient with mTLS, the edge's header rule and a static Negotiate
#              header of FAST_NEGOTIATE (2100) bytes standing for KCD's
#              (bench/cmd/fastproxy, a module of its own), on 127.0.0.29
# and the cold path (new users per second against the lab KDC, compared with
# ldapsearch + MIT kvno -U -P doing the same LDAP search and two TGS exchanges).
#
# Usage (as root, lab up: bash deploy/lab/lab.sh up):
#   bash bench/run.sh            side by side + cold path (< 5 minutes)
#   bash bench/run.sh side       side by side only
#   bash bench/run.sh cold       cold path only
#   bash bench/run.sh scale      idle Ping connections and RSS per connection (~12 minutes)
#   BEFORE=<rev> bash bench/run.sh hotpath   BenchmarkProxyHotPath at <rev> and here,
#                                alternated ROUNDS times (no lab needed)
# Knobs (environment): ROUNDS (5) DUR (4s) SKIP (1s) C (64) CERTS (1000)
# MODES ("keepalive handshake") PROXIES ("bare nginx aio split") VERIFY_EVERY
# (20: the backend verifies 1 in N Negotiate headers) RUN_LIMIT (280 s);
# scale: PINGS (9900 per proxy process) RAMP (90 s) HOLD (130 s) SCALE_CERTS
# (500) SCALE_PROXIES ("bare nginx aio"; fasthttp and nethttp may be added) SCALE_VERIFY_EVERY (100);
# BENCH_WORK (/var/tmp/segmesh-bench); PROFILE (0: 1 turns on pprof in the
# segmesh configs and bareproxy and, after the keep-alive rounds, profiles
# each of bare, aio and split's edge for PROFILE_SECS (10) of CPU and
# allocations during one extra, unreported keep-alive measurement, saved with
# `go tool pprof -top -cum` text in $WORK/run/profile-*); BARE_PAD (0: the
# bare proxy adds a static header of that many bytes, e.g. 2100 for the size
# of segmesh's Negotiate header, to show what carrying it costs net/http);
# BEFORE (unset: a git revision; segmesh is also built at that revision, in
# a temporary `git worktree` under $WORK removed at exit, and runs all-in-one
# as the proxy "before" on 127.0.0.28 when PROXIES names it, e.g.
# PROXIES="bare before aio": the same code before and after a change,
# interleaved round by round, with the aio/before ratios per round).
#
# Method: each proxy is pinned to CPU 0, the load generator and the backend to
# CPU 1 (taskset); every client offers only X25519 (OpenSSL 3.0 has no
# X25519MLKEM768) and TLS 1.3; proxies are interleaved round by round; per
# proxy the report gives requests/s, p99 and the proxy's CPU time per request
# (/proc/PID/stat), as medians with their range. Everything started here is
# recorded in $WORK/pids and stopped by PID on exit. Loopback only.
set -euo pipefail

cd "$(dirname "$0")/.."
WHAT=${1:-all}
WORK=${BENCH_WORK:-/var/tmp/segmesh-bench}
ROUNDS=${ROUNDS:-5}
DUR=${DUR:-4s}
C=${C:-64}
CERTS=${CERTS:-1000}
MODES=${MODES:-keepalive handshake}
PROXIES=${PROXIES:-bare nginx aio split}
PINGS=${PINGS:-9900}
RAMP=${RAMP:-90}
HOLD=${HOLD:-130}
SCALE_PROXIES=${SCALE_PROXIES:-bare nginx aio}
SKIP=${SKIP:-1s}
VERIFY_EVERY=${VERIFY_EVERY:-20}
RUN_LIMIT=${RUN_LIMIT:-280} # seconds for the side-by-side rounds; rounds stop there
PROFILE=${PROFILE:-0}
BARE_PAD=${BARE_PAD:-0} # bytes of a static extra header the bare proxy adds (0: none)
PROFILE_SECS=${PROFILE_SECS:-10}
BEFORE=${BEFORE:-}
HOTPATH_BENCH=${HOTPATH_BENCH:-ProxyHotPath/negotiator=pkg}
HOTPATH_TIME=${HOTPATH_TIME:-5000x}
START=$(date +%s)

case "$WHAT" in all | side | cold | scale | hotpath) ;; *)
	echo "usage: bash bench/run.sh [all|side|cold|scale|hotpath]" >&2
	exit 2
	;;
esac
if [[ " $PROXIES " == *" before "* || $WHAT == hotpath ]] && [[ -z $BEFORE ]]; then
	echo "bench: the proxy \"before\" and hotpath need BEFORE=<git revision>" >&2
	exit 2
fi

if [[ $WHAT != hotpath ]]; then
	while IFS='=' read -r k v; do
		[[ $k == LAB_* ]] && export "$k=$v"
	done < <(bash deploy/lab/lab.sh env)
	[[ -n ${LAB_DIR:-} && -f ${LAB_SEGMESH_CONFIG:-} ]] || {
		echo "bench: the lab is not set up (bash deploy/lab/lab.sh up)" >&2
		exit 1
	}
fi

rm -rf "$WORK/run"
mkdir -p "$WORK/bin" "$WORK/run"
RUN=$WORK/run
PIDS=$RUN/pids
: >"$PIDS"
RESULTS=$RUN/results.jsonl
: >"$RESULTS"

cleanup() {
	local pid name
	[[ -f $PIDS ]] || return 0
	while read -r pid name; do
		kill -TERM "$pid" 2>/dev/null || true
	done <"$PIDS"
	for _ in $(seq 1 30); do
		local alive=0
		while read -r pid name; do kill -0 "$pid" 2>/dev/null && alive=1; done <"$PIDS"
		((alive)) || break
		sleep 0.1
	done
	while read -r pid name; do
		kill -KILL "$pid" 2>/dev/null && echo "bench: killed $name ($pid)" >&2
	done <"$PIDS"
	: >"$PIDS"
}
# drop_before removes the worktree build_before made.
BEFORE_SRC=
drop_before() {
	[[ -n $BEFORE_SRC ]] || return 0
	git worktree remove --force "$BEFORE_SRC" 2>/dev/null || rm -rf "$BEFORE_SRC"
}
trap 'cleanup; drop_before' EXIT
trap 'exit 130' INT TERM

# start NAME CPU CMD...: runs CMD pinned to CPU in the background, logs to
# $RUN/NAME.log and records its PID.
start() {
	local name=$1 cpu=$2
	shift 2
	taskset -c "$cpu" "$@" >"$RUN/$name.log" 2>&1 &
	echo "$! $name" >>"$PIDS"
	eval "PID_${name//-/_}=$!"
}

pidof_name() { awk -v n="$1" '$2 == n {print $1}' "$PIDS" | tail -1; }

# wait_http URL SECONDS: polls until URL answers 200.
wait_http() {
	local url=$1 i
	for ((i = 0; i < $2 * 10; i++)); do
		[[ $(curl -s -o /dev/null -w '%{http_code}' "$url" 2>/dev/null) == 200 ]] && return 0
		sleep 0.1
	done
	return 1
}

# wait_port HOST:PORT SECONDS
wait_port() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		(exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

BIN=$WORK/bin

# build_before checks BEFORE out in a temporary worktree ($WORK/before-src)
# and builds segmesh there as $BIN/before/segmesh.
build_before() {
	local rev
	rev=$(git rev-parse --verify --quiet "$BEFORE^{commit}") || {
		echo "bench: BEFORE=$BEFORE is not a commit here" >&2
		exit 2
	}
	git worktree remove --force "$WORK/before-src" 2>/dev/null || rm -rf "$WORK/before-src" # an interrupted run's
	git worktree add --force --detach --quiet "$WORK/before-src" "$rev"
	BEFORE_SRC=$WORK/before-src
	echo "before: $(git log -1 --format='%h %ad %s' --date=iso "$rev" | cut -c1-100)"
	(cd "$BEFORE_SRC" && go build -o "$BIN/before/" ./cmd/segmesh)
}

echo "== building"
if [[ $WHAT == hotpath ]]; then
	build_before
else
	go build -o "$WORK/bin/" ./bench/cmd/segload ./bench/cmd/negbackend ./bench/cmd/bareproxy ./cmd/segmesh
	if [[ " $PROXIES $SCALE_PROXIES " == *" fasthttp "* ]]; then (cd bench/cmd/fastproxy && go build -o "$WORK/bin/" .); fi
	if [[ " $PROXIES " == *" before "* ]]; then build_before; fi
	CA_BUNDLE=$RUN/client-ca.pem
	cat "$LAB_CA_ROOT" "$LAB_CA_INTER" "$LAB_CA_SECOND" >"$CA_BUNDLE"
	CA_LIST=$LAB_CA_ROOT,$LAB_CA_INTER,$LAB_CA_SECOND
fi

machine() {
	echo "machine: nproc=$(nproc) cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')\" ram=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) $(go version | cut -d' ' -f3-) kernel=$(uname -r) nginx=$(nginx -v 2>&1 | cut -d/ -f2)"
	echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
}

BACKEND=127.0.0.30:8080
SEGLOAD=(taskset -c 1 "$BIN/segload" -server-ca "${LAB_SERVER_CA:-}" -server-name "${LAB_EDGE_HOST:-}") # (no lab for hotpath)

start_backend() {
	start negbackend 1 "$BIN/negbackend" -listen "$BACKEND" -anonymous -keytab "$LAB_EXCHANGE_KEYTAB" -spn "$LAB_TARGET_SPN" -verify-every "$VERIFY_EVERY"
	wait_port "$BACKEND" 10 || {
		echo "bench: negbackend did not start: $(tail -3 "$RUN/negbackend.log")" >&2
		exit 1
	}
}

# segmesh_config DIR LISTEN ADMIN [jq filter]: writes DIR/config.json from the
# lab's config with the edge on LISTEN in front of negbackend.
segmesh_config() {
	local dir=$1 listen=$2 admin=$3 extra=${4:-.}
	mkdir -p "$dir"
	jq --arg l "$listen" --arg a "$admin" --arg b "http://$BACKEND" --arg s "$dir/crl-cache" --argjson pp "$([[ $PROFILE == 1 ]] && echo true || echo false)" \
		'.segmesh.edge.listen=$l | .segmesh.edge.exchangeUrls=[$b] | .segmesh.admin.listen=$a | .segmesh.crl.stateDir=$s | .segmesh.admin.pprof=$pp' \
		"$LAB_SEGMESH_CONFIG" | jq "$extra" >"$dir/config.json"
}

declare -A ADDR CPUPIDS READY PPROF
PPROF[bare]=127.0.0.20:6060
PPROF[bareloop]=127.0.0.26:6060
PPROF[aio]=127.0.0.22:9090
PPROF[split]=127.0.0.23:9090
PPROF[before]=127.0.0.28:9090
PPROF[nethttp]=127.0.0.27:9090
ADDR[bare]=127.0.0.20:8443
ADDR[bareloop]=127.0.0.26:8443
ADDR[nginx]=127.0.0.21:8443
ADDR[aio]=127.0.0.22:8443
ADDR[split]=127.0.0.23:8443
ADDR[before]=127.0.0.28:8443
ADDR[fasthttp]=127.0.0.29:8443
ADDR[nethttp]=127.0.0.27:8443

start_bare() {
	start bareproxy 0 "$BIN/bareproxy" -listen "${ADDR[bare]}" -cert "$LAB_SERVER_CERT" -key "$LAB_SERVER_KEY" \
		-client-ca "$CA_LIST" -backend "http://$BACKEND" -idle 1024 -flush-interval 0 -pad-header-bytes "$BARE_PAD" \
		$([[ $PROFILE == 1 ]] && echo "-pprof ${PPROF[bare]}")
	wait_port "${ADDR[bare]}" 10 && READY[bare]=1 && CPUPIDS[bare]=$PID_bareproxy
}

# start_bareloop: the bare proxy without net/http's server on the device side.
start_bareloop() {
	start bareloop 0 "$BIN/bareproxy" -device-loop -listen "${ADDR[bareloop]}" -cert "$LAB_SERVER_CERT" -key "$LAB_SERVER_KEY" \
		-client-ca "$CA_LIST" -backend "http://$BACKEND" -idle 1024 -flush-interval 0 -pad-header-bytes "$BARE_PAD" \
		$([[ $PROFILE == 1 ]] && echo "-pprof ${PPROF[bareloop]}")
	wait_port "${ADDR[bareloop]}" 10 && READY[bareloop]=1 && CPUPIDS[bareloop]=$PID_bareloop
}

start_fasthttp() {
	start fastproxy 0 "$BIN/fastproxy" -listen "${ADDR[fasthttp]}" -cert "$LAB_SERVER_CERT" -key "$LAB_SERVER_KEY" \
		-client-ca "$CA_LIST" -backend "$BACKEND" -negotiate-bytes "${FAST_NEGOTIATE:-2100}"
	wait_port "${ADDR[fasthttp]}" 10 && READY[fasthttp]=1 && CPUPIDS[fasthttp]=$PID_fastproxy
}

start_nginx() {
	local p=$RUN/nginx
	mkdir -p "$p/tmp"
	sed -e "s|@PREFIX@|$p|g" -e "s|@LISTEN@|${ADDR[nginx]}|g" -e "s|@CERT@|$LAB_SERVER_CERT|g" \
		-e "s|@KEY@|$LAB_SERVER_KEY|g" -e "s|@CA@|$CA_BUNDLE|g" -e "s|@BACKEND@|$BACKEND|g" \
		bench/nginx/nginx.conf.tmpl >"$p/nginx.conf"
	if ! command -v nginx >/dev/null; then
		echo "bench: nginx missing (apt-get install nginx); skipping (b)" >&2
		return 0
	fi
	start nginx 0 nginx -p "$p" -c "$p/nginx.conf" -e "$p/error.log"
	if wait_port "${ADDR[nginx]}" 10; then
		READY[nginx]=1
		CPUPIDS[nginx]="$PID_nginx,$(pgrep -d, -P "$PID_nginx")"
	else
		echo "bench: nginx did not start: $(tail -3 "$p/error.log" 2>/dev/null)" >&2
	fi
}

# start_allinone NAME BINARY [jq filter]: segmesh all-in-one as the proxy
# NAME (aio; before: the binary built at BEFORE; nethttp: with the filter
# choosing the engine before the relay), admin on its address's port 9090.
start_allinone() {
	local name=$1 admin=${ADDR[$1]%:*}:9090
	segmesh_config "$RUN/$name" "${ADDR[$name]}" "$admin" "${3:-.}"
	start "segmesh-$name" 0 "$2" run --config "$RUN/$name/config.json"
	if wait_http "http://$admin/readyz" 60; then
		READY[$name]=1
		CPUPIDS[$name]=$(pidof_name "segmesh-$name")
	else
		echo "bench: segmesh all-in-one ($name) did not get ready; skipping it: $(tail -3 "$RUN/segmesh-$name.log")" >&2
	fi
}
start_aio() { start_allinone aio "$BIN/segmesh"; }
# start_nethttp: the HTTP/1.1 engine before the relay (httputil.ReverseProxy
# over http.Transport); aio runs the default, the relay.
start_nethttp() { start_allinone nethttp "$BIN/segmesh" '.segmesh.edge.http1Engine="net/http"'; }

start_split() {
	segmesh_config "$RUN/split-roles" 127.0.0.24:8443 127.0.0.24:9090 '.segmesh.grpc.listen="127.0.0.24:9443"'
	segmesh_config "$RUN/split-edge" "${ADDR[split]}" 127.0.0.23:9090 \
		'.segmesh.peers={"identity":"127.0.0.24:9443","ticket":"127.0.0.24:9443","crl":"127.0.0.24:9443"}'
	start segmesh-roles 0 "$BIN/segmesh" run --config "$RUN/split-roles/config.json" --roles=crl,identity,ticket
	if ! wait_http http://127.0.0.24:9090/readyz 60; then
		echo "bench: segmesh --roles=crl,identity,ticket did not get ready; skipping (d): $(tail -3 "$RUN/segmesh-roles.log")" >&2
		return 0
	fi
	start segmesh-edge 0 "$BIN/segmesh" run --config "$RUN/split-edge/config.json" --roles=edge
	if wait_http http://127.0.0.23:9090/readyz 60; then
		READY[split]=1
		CPUPIDS[split]="$PID_segmesh_edge,$PID_segmesh_roles"
	else
		echo "bench: segmesh --roles=edge did not get ready; skipping (d): $(tail -3 "$RUN/segmesh-edge.log")" >&2
	fi
}

# kdc_exchanges ADMIN: the sum of segmesh_ticket_kdc_exchanges over all labels.
kdc_exchanges() {
	curl -s "http://$1/metrics" | awk '/^segmesh_ticket_kdc_exchanges/ {s += $NF} END {print s + 0}'
}

# ---------------------------------------------------------------- cold path
cold() {
	echo "== cold path: new users against the lab KDC (segmesh all-in-one, fresh process)"
	[[ ${READY[aio]:-} == 1 ]] || {
		echo "cold path skipped: segmesh all-in-one not running"
		return 0
	}
	local admin=127.0.0.22:9090 k0 k1 k2
	k0=$(kdc_exchanges $admin)
	"${SEGLOAD[@]}" -url "https://${ADDR[aio]}" -label "cold c=1 user0001-0049" -mode handshake -c 1 \
		-cert-dirs "$LAB_USERS_DIR/user00[0-4]?" -n 49 -duration 60s -json | tee -a "$RUN/cold.jsonl" | jq -c "{label: .label, ok, errors, rps, p50_ms, p99_ms}"
	k1=$(kdc_exchanges $admin)
	"${SEGLOAD[@]}" -url "https://${ADDR[aio]}" -label "cold c=8 user0100-0189" -mode handshake -c 8 \
		-cert-dirs "$LAB_USERS_DIR/user01[0-8]?" -n 90 -duration 60s -json | tee -a "$RUN/cold.jsonl" | jq -c "{label: .label, ok, errors, rps, p50_ms, p99_ms}"
	k2=$(kdc_exchanges $admin)
	echo "KDC exchanges counted by segmesh: $((k1 - k0)) for 49 new users (c=1), $((k2 - k1)) for 90 new users (c=8)"
	curl -s "http://$admin/metrics" | grep '^segmesh_ticket_kdc_exchanges' || true
	echo "$((k1 - k0)) $((k2 - k1))" >"$RUN/cold-kdc.txt"

	echo "-- raw: one ldapsearch (userCertificate filter, ldaps, bind as svc_seg) + kvno -U user -P (S4U2Self + S4U2Proxy) per user, sequential"
	local cc=$RUN/svc.cc n=${RAW_USERS:-20} i u der filter t0 t1 tl=0 tk=0
	KRB5_CONFIG=$LAB_KRB5_CONFIG KRB5CCNAME=FILE:$cc kinit "$LAB_SVC_USER@$LAB_REALM" <"$LAB_SVC_PASSWORD_FILE" >/dev/null
	for ((i = 50; i < 50 + n; i++)); do
		u=$(printf 'user%04d' "$i")
		der=$LAB_USERS_DIR/$u/cert.der
		filter="(userCertificate=$(od -An -v -tx1 "$der" | tr -d ' \n' | sed 's/../\\&/g'))"
		t0=$(date +%s%N)
		LDAPTLS_CACERT=$LAB_LDAP_CA LDAPTLS_REQCERT=demand ldapsearch -LLL -x -o nettimeout=5 -H "$LAB_LDAPS_URL" \
			-D "$LAB_SVC_DN" -y "$LAB_SVC_PASSWORD_FILE" -b "$LAB_BASE_DN" "$filter" userPrincipalName >"$RUN/ldap.out"
		grep -q "userPrincipalName: $u@" "$RUN/ldap.out" || {
			echo "bench: ldapsearch did not find $u" >&2
			return 1
		}
		t1=$(date +%s%N)
		tl=$((tl + t1 - t0))
		cp "$cc" "$RUN/iter.cc"
		KRB5_CONFIG=$LAB_KRB5_CONFIG KRB5CCNAME=FILE:$RUN/iter.cc kvno -U "$u@$LAB_DOMAIN" -P --out-cache "FILE:$RUN/user.cc" "$LAB_TARGET_SPN" >/dev/null
		rm -f "$RUN/user.cc"
		tk=$(($(date +%s%N) - t1 + tk))
	done
	printf 'raw per user: ldapsearch %.1f ms + kvno %.1f ms = %.1f ms (sequential, includes process start and a fresh LDAPS connection each)\n' \
		"$(echo "$tl / $n / 1000000" | bc -l)" "$(echo "$tk / $n / 1000000" | bc -l)" "$(echo "($tl + $tk) / $n / 1000000" | bc -l)" | tee "$RUN/raw.txt"
	# What process start alone costs, to read the raw figure fairly.
	t0=$(date +%s%N)
	for ((i = 0; i < n; i++)); do ldapsearch -VV >/dev/null 2>&1 || true; done
	printf 'process start alone (ldapsearch -VV): %.1f ms\n' "$(echo "($(date +%s%N) - $t0) / $n / 1000000" | bc -l)" | tee -a "$RUN/raw.txt"
}

# profile PROXY...: for each Go proxy, one extra keep-alive measurement (not
# in the results) of PROFILE_SECS + 2 s while the proxy's /debug/pprof takes
# a CPU profile and an allocation profile (delta) of PROFILE_SECS; saved as
# $RUN/profile-PROXY.{cpu,allocs}.pprof with `-top -cum` text beside them.
profile() {
	local p base
	for p in "$@"; do
		[[ -n ${PPROF[$p]:-} ]] || continue
		base=$RUN/profile-$p
		echo "-- profiling $p: ${PROFILE_SECS}s of CPU and allocations under keep-alive load"
		"${SEGLOAD[@]}" -url "https://${ADDR[$p]}" -cert-dirs "$RUN/certs/d*" -mode keepalive -c "$C" -duration "$((PROFILE_SECS + 2))s" -skip 1s \
			-cpu-pids "${CPUPIDS[$p]}" -label "profile $p" -json >"$base.segload.json" &
		local lp=$!
		sleep 1
		curl -s -o "$base.allocs.pprof" "http://${PPROF[$p]}/debug/pprof/allocs?seconds=$PROFILE_SECS" &
		curl -s -o "$base.cpu.pprof" "http://${PPROF[$p]}/debug/pprof/profile?seconds=$PROFILE_SECS"
		wait $! || true
		wait "$lp" || true
		jq -r '"profile \(.label): \(.rps | floor) req/s, proxy cpu \(.target_cpu_us_per_req // 0 | floor) µs/req"' "$base.segload.json" || true
		go tool pprof -top -cum -nodecount 60 "$base.cpu.pprof" >"$base.cpu.txt" 2>&1 || true
		go tool pprof -top -nodecount 40 "$base.cpu.pprof" >"$base.cpu-flat.txt" 2>&1 || true
		go tool pprof -sample_index=alloc_space -top -cum -nodecount 40 "$base.allocs.pprof" >"$base.allocs.txt" 2>&1 || true
		go tool pprof -sample_index=alloc_objects -top -nodecount 40 "$base.allocs.pprof" >"$base.allocs-objects.txt" 2>&1 || true
		sed -n '1,25p' "$base.cpu.txt"
	done
}

# ---------------------------------------------------------------- side by side
side() {
	echo "== side by side: ROUNDS=$ROUNDS DUR=$DUR C=$C CERTS=$CERTS MODES=\"$MODES\""
	local p mode r certs="$RUN/certs/d*"
	"$BIN/segload" -mint-out "$RUN/certs" -ca-cert "$LAB_CA_INTER" -ca-key "$LAB_DIR/pki/ca/inter.key" -certs "$CERTS" -users "$LAB_GENERATED_USERS" -duration 1s
	for p in before aio split nethttp; do
		[[ ${READY[$p]:-} == 1 ]] || continue
		echo "-- warming $p: one request per device certificate ($CERTS), not measured"
		"${SEGLOAD[@]}" -url "https://${ADDR[$p]}" -cert-dirs "$certs" -mode handshake -c 16 -n "$CERTS" -duration 120s -label "warm $p" |
			sed -n '1,4p'
	done
	local active=()
	for p in $PROXIES; do
		if [[ ${READY[$p]:-} == 1 ]]; then active+=("$p"); else echo "-- $p: not running, skipped"; fi
	done
	for ((r = 1; r <= ROUNDS; r++)); do
		if (($(date +%s) - START > RUN_LIMIT)); then
			echo "-- time limit ($RUN_LIMIT s) reached after $((r - 1)) rounds"
			break
		fi
		for mode in $MODES; do
			for p in "${active[@]}"; do
				"${SEGLOAD[@]}" -url "https://${ADDR[$p]}" -cert-dirs "$certs" -mode "$mode" -c "$C" -duration "$DUR" -skip "$SKIP" \
					-cpu-pids "${CPUPIDS[$p]}" -label "$p" -json |
					jq -c --arg p "$p" --arg m "$mode" --argjson r "$r" --arg la "$(cut -d' ' -f1 /proc/loadavg)" \
						'del(.buckets, .sum_ns) + {proxy: $p, mode: $m, round: $r, loadavg: ($la | tonumber)}' >>"$RESULTS"
				tail -1 "$RESULTS" | jq -r '"round \(.round) \(.mode) \(.proxy): \(.rps | floor) req/s, p99 \(.p99_ms) ms, proxy cpu \(.target_cpu_us_per_req // 0 | floor) µs/req, errors \(.errors)"'
			done
		done
	done
	[[ $PROFILE == 1 && " $MODES " == *" keepalive "* ]] && profile "${active[@]}"
	python3 - "$RESULTS" "$C" "$BEFORE" <<'PY' | tee "$RUN/summary.md"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
names = {"bare": "(a) bare Go ReverseProxy, mTLS", "bareloop": "(a2) bare, device loop instead of net/http's server", "nginx": "(b) nginx, mTLS, no Kerberos",
         "fasthttp": "(f) fasthttp proxy, mTLS, static Negotiate",
         "before": f"(c0) segmesh all-in-one at {sys.argv[3]}",
         "aio": "(c) segmesh all-in-one (relay engine, the default)", "split": "(d) segmesh split (edge + roles)",
         "nethttp": "(e) segmesh all-in-one, net/http engine"}
def med(xs):
    return statistics.median(xs) if xs else float("nan")
def rng(xs):
    return f"{min(xs):.0f}–{max(xs):.0f}" if xs else ""
for mode in ("keepalive", "handshake"):
    rs = [r for r in rows if r["mode"] == mode]
    if not rs:
        continue
    print(f"\n### {mode}: {sys.argv[2]} connections, {len(set(r['round'] for r in rs))} rounds\n")
    print("| proxy | req/s median (range) | p99 ms median (range) | proxy CPU µs/req median (range) | req/s vs (a) | CPU/req vs (a) | p99 vs (a) | errors |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    base = None
    stats = {}
    for p in ("bare", "bareloop", "nginx", "fasthttp", "before", "nethttp", "aio", "split"):
        pr = [r for r in rs if r["proxy"] == p]
        if not pr:
            continue
        rps = [r["rps"] for r in pr]
        p99 = [r["p99_ms"] for r in pr]
        cpu = [r.get("target_cpu_us_per_req", 0) for r in pr]
        errs = {}
        for r in pr:
            for k, v in (r.get("errors") or {}).items():
                errs[k] = errs.get(k, 0) + v
        stats[p] = (med(rps), med(p99), med(cpu))
        if p == "bare":
            base = stats[p]
        ratio = lambda i: f"{stats[p][i] / base[i]:.2f}×" if base and base[i] else "—"
        p99d = f"{stats[p][1] - base[1]:+.2f} ms" if base else "—"
        print(f"| {names[p]} | {med(rps):.0f} ({rng(rps)}) | {med(p99):.2f} ({min(p99):.2f}–{max(p99):.2f}) | {med(cpu):.0f} ({rng(cpu)}) | {ratio(0)} | {ratio(2)} | {p99d} | {errs or 'none'} |")
    # aio against before, aio (the relay) against the net/http engine, round
    # by round (each pair measured a few seconds apart).
    by = {(r["proxy"], r["round"]): r for r in rs}
    for old, new in (("before", "aio"), ("nethttp", "aio"), ("bare", "bareloop")):
        pairs = [(by[(old, n)], by[(new, n)]) for n in sorted({r["round"] for r in rs}) if (old, n) in by and (new, n) in by]
        if not pairs:
            continue
        cpu = [a.get("target_cpu_us_per_req", 0) / b["target_cpu_us_per_req"] for b, a in pairs if b.get("target_cpu_us_per_req")]
        rps = [a["rps"] / b["rps"] for b, a in pairs if b["rps"]]
        p99 = [a["p99_ms"] - b["p99_ms"] for b, a in pairs]
        f = lambda xs, u="×": f"{med(xs):.3f}{u} ({min(xs):.3f}–{max(xs):.3f})" if xs else "—"
        dus = [a.get("target_cpu_us_per_req", 0) - b.get("target_cpu_us_per_req", 0) for b, a in pairs]
        print(f"\n{new} / {old}, {len(pairs)} rounds, median (range): CPU/req {f(cpu)} ({med(dus):+.1f} µs, {min(dus):+.1f} to {max(dus):+.1f}), req/s {f(rps)}, p99 {med(p99):+.2f} ms ({min(p99):+.2f} to {max(p99):+.2f})")
PY
}

# ---------------------------------------------------------------- hot path
# hotpath: the edge's test binary at BEFORE and here, built once each, run
# alternately (before, then after) ROUNDS times, each in its own package
# directory; per round the ratio after/before of the benchmark's CPU per
# request (cpu-ns/op: the whole process, clients and backend included).
hotpath() {
	local r side out=$RUN/hotpath.txt
	echo "== $HOTPATH_BENCH, before ($BEFORE) and after (this tree) alternated: ROUNDS=$ROUNDS, -test.benchtime $HOTPATH_TIME"
	go test -c -o "$BIN/after.test" ./services/edge
	(cd "$BEFORE_SRC" && go test -c -o "$BIN/before.test" ./services/edge)
	: >"$out"
	for ((r = 1; r <= ROUNDS; r++)); do
		for side in before after; do
			(cd "$([[ $side == before ]] && echo "$BEFORE_SRC" || pwd)/services/edge" &&
				"$BIN/$side.test" -test.run '^$' -test.bench "$HOTPATH_BENCH" -test.benchtime "$HOTPATH_TIME" -test.benchmem) |
				awk -v s="$side" -v r="$r" -v la="$(cut -d' ' -f1 /proc/loadavg)" '/^Benchmark/ {print s, r, la, $0}' | tee -a "$out"
		done
	done
	python3 - "$out" <<'PY' | tee "$RUN/hotpath-summary.md"
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    m = {f[i + 1]: float(f[i]) for i in range(5, len(f) - 1) if f[i + 1].endswith("/op")}
    rows[(f[0], int(f[1]), f[3])] = (float(f[2]), m)
def show(xs, d=0):
    return f"{statistics.median(xs):,.{d}f} ({min(xs):,.{d}f}–{max(xs):,.{d}f})"
print(f"| benchmark | rounds | load | CPU µs/request before, median (range) | after | ratio after/before, median (range) | ns/op ratio | B/op before → after (ratio range) | allocs/op before → after |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for bench in sorted({b for _, _, b in rows}):
    rounds = sorted({r for s, r, b in rows if b == bench and ("before", r, b) in rows and ("after", r, b) in rows})
    def col(side, k):
        return [rows[(side, r, bench)][1].get(k, 0) for r in rounds]
    def ratio(k):
        return [a / b for a, b in zip(col("after", k), col("before", k)) if b]
    load = [rows[k][0] for k in rows if k[2] == bench]
    print(f"| {bench} | {len(rounds)} | {min(load):.1f}–{max(load):.1f} | {show([x / 1000 for x in col('before', 'cpu-ns/op')])} | {show([x / 1000 for x in col('after', 'cpu-ns/op')])} | "
          f"{show(ratio('cpu-ns/op'), 3)} | {show(ratio('ns/op'), 3)} | {statistics.median(col('before', 'B/op')):,.0f} → {statistics.median(col('after', 'B/op')):,.0f} ({show(ratio('B/op'), 3)}) | "
          f"{statistics.median(col('before', 'allocs/op')):.0f} → {statistics.median(col('after', 'allocs/op')):.0f} |")
PY
}

# ---------------------------------------------------------------- scale
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
rss_sum() {
	local s=0 p
	for p in ${1//,/ }; do s=$((s + $(rss_kb "$p"))); done
	echo $s
}

scale() {
	echo "== scale: 2 × $PINGS idle Ping connections (opened over ${RAMP}s, held ${HOLD}s) per proxy kind; RSS per connection"
	local kind i cpus addrs backends
	"$BIN/segload" -mint-out "$RUN/certs" -ca-cert "$LAB_CA_INTER" -ca-key "$LAB_DIR/pki/ca/inter.key" -certs "${SCALE_CERTS:-500}" -users "$LAB_GENERATED_USERS" -duration 1s
	for i in 1 2; do
		start "negbackend$i" 1 "$BIN/negbackend" -listen "127.0.0.3$i:8080" -anonymous -keytab "$LAB_EXCHANGE_KEYTAB" -spn "$LAB_TARGET_SPN" -verify-every "${SCALE_VERIFY_EVERY:-100}"
		wait_port "127.0.0.3$i:8080" 10
	done
	for kind in $SCALE_PROXIES; do
		local pids=() addr
		for i in 1 2; do
			addr=127.0.0.4$i:8443
			case $kind in
			bare)
				start "scale-bare$i" 0 "$BIN/bareproxy" -listen "$addr" -cert "$LAB_SERVER_CERT" -key "$LAB_SERVER_KEY" \
					-client-ca "$CA_LIST" -backend "http://127.0.0.3$i:8080" -idle 16
				wait_port "$addr" 10 || { echo "bench: bareproxy $i did not start" >&2; continue 2; }
				pids+=("$(pidof_name "scale-bare$i")")
				;;
			fasthttp)
				start "scale-fasthttp$i" 0 "$BIN/fastproxy" -listen "$addr" -cert "$LAB_SERVER_CERT" -key "$LAB_SERVER_KEY" \
					-client-ca "$CA_LIST" -backend "127.0.0.3$i:8080" -max-conns $((PINGS + 1000))
				wait_port "$addr" 10 || { echo "bench: fastproxy $i did not start" >&2; continue 2; }
				pids+=("$(pidof_name "scale-fasthttp$i")")
				;;
			nginx)
				mkdir -p "$RUN/scale-nginx$i/tmp"
				sed -e "s|@PREFIX@|$RUN/scale-nginx$i|g" -e "s|@LISTEN@|$addr|g" -e "s|@CERT@|$LAB_SERVER_CERT|g" \
					-e "s|@KEY@|$LAB_SERVER_KEY|g" -e "s|@CA@|$CA_BUNDLE|g" -e "s|@BACKEND@|127.0.0.3$i:8080|g" \
					bench/nginx/nginx.conf.tmpl >"$RUN/scale-nginx$i/nginx.conf"
				start "scale-nginx$i" 0 nginx -p "$RUN/scale-nginx$i" -c "$RUN/scale-nginx$i/nginx.conf" -e "$RUN/scale-nginx$i/error.log"
				wait_port "$addr" 10 || { echo "bench: nginx $i did not start" >&2; continue 2; }
				# The worker holds the connections; the master's RSS does not change.
				pids+=("$(pgrep -P "$(pidof_name "scale-nginx$i")" | head -1)")
				;;
			aio | nethttp)
				# aio: the default engine (the relay); nethttp: the one before it.
				local engine=relay
				[[ $kind == nethttp ]] && engine=net/http
				segmesh_config "$RUN/scale-$kind$i" "$addr" "127.0.0.4$i:9090" \
					".segmesh.edge.exchangeUrls=[\"http://127.0.0.3$i:8080\"] | .segmesh.admin.pprof=true | .segmesh.edge.http1Engine=\"$engine\""
				start "scale-$kind$i" 0 "$BIN/segmesh" run --config "$RUN/scale-$kind$i/config.json"
				wait_http "http://127.0.0.4$i:9090/readyz" 60 || { echo "bench: segmesh $i did not get ready; skipping scale for $kind" >&2; continue 2; }
				pids+=("$(pidof_name "scale-$kind$i")")
				# Warm: each device certificate once, so the idle phase measures connections, not caches.
				"${SEGLOAD[@]}" -url "https://$addr" -cert-dirs "$RUN/certs/d*" -mode handshake -c 16 -n "${SCALE_CERTS:-500}" -duration 120s -label "warm scale-$kind$i" | sed -n 2,4p
				;;
			esac
		done
		local before=() after=() i2
		sleep 2
		for i2 in 0 1; do before+=("$(rss_kb "${pids[$i2]}")"); done
		local dur=$((HOLD + RAMP + 30)) lp=()
		for i in 1 2; do
			"${SEGLOAD[@]}" -url "https://127.0.0.4$i:8443" -cert-dirs "$RUN/certs/d*" -kind ping -hold "${HOLD}s" -mode keepalive \
				-c "$PINGS" -n "$PINGS" -ramp "${RAMP}s" -duration "${dur}s" -src "127.0.1.$i,127.0.2.$i" \
				-label "$kind$i idle pings" >"$RUN/scale-$kind$i.txt" 2>&1 &
			lp+=($!)
			echo "$! segload-scale-$kind$i" >>"$PIDS"
		done
		# Measure while every Ping is held: once both proxies hold (nearly) all
		# of them (a held Ping is two descriptors: device and upstream), after
		# the ramp and before the hold ends.
		local conns=(0 0) fds=() fds0=() t0=$SECONDS
		for i2 in 0 1; do fds0+=("$(ls "/proc/${pids[$i2]}/fd" | wc -l)"); done
		# The first Pings end HOLD seconds after t0: measure before that.
		local until=$((RAMP + HOLD / 2 < HOLD - 10 ? RAMP + HOLD / 2 : HOLD - 10))
		while ((SECONDS - t0 < until)); do
			for i2 in 0 1; do
				conns[i2]=$((($(ls "/proc/${pids[$i2]}/fd" | wc -l) - fds0[i2]) / 2))
			done
			((conns[0] >= PINGS * 99 / 100 && conns[1] >= PINGS * 99 / 100)) && break
			sleep 1
		done
		sleep 3
		for i2 in 0 1; do
			after+=("$(rss_kb "${pids[$i2]}")")
			fds+=("$(ls "/proc/${pids[$i2]}/fd" | wc -l)")
			conns[i2]=$(((fds[i2] - fds0[i2]) / 2))
		done
		echo "measured $((SECONDS - t0)) s after the Pings started"
		for i2 in 0 1; do
			echo "$kind$((i2 + 1)): RSS ${before[$i2]} KiB idle → ${after[$i2]} KiB with ${conns[$i2]} device connections held (${fds[$i2]} fds): $(((after[i2] - before[i2]) * 1024 / (conns[i2] > 0 ? conns[i2] : 1))) bytes per held Ping" |
				tee -a "$RUN/scale.txt"
		done
		if [[ $kind == aio || $kind == nethttp ]]; then
			# Where the bytes are (read after the RSS): Go heap and stacks
			# now, and the live heap after a forced GC.
			for i in 1 2; do
				local pp=http://127.0.0.4$i:9090/debug/pprof
				echo "$kind$i: $(curl -s "$pp/heap?debug=1" | awk '/^# (HeapInuse|Stack) =/ {printf "%s %.1f MiB ", $2, $4/1048576}')goroutines $(curl -s "$pp/goroutine?debug=1" | awk 'NR==1 {print $NF}')" | tee -a "$RUN/scale.txt"
				curl -s -o "$RUN/scale-$kind$i-heap.pb.gz" "$pp/heap?gc=1"
				echo "$kind$i after a forced GC: $(curl -s "$pp/heap?debug=1" | awk '/^# (HeapAlloc|HeapInuse|Stack) =/ {printf "%s %.1f MiB ", $2, $4/1048576}')RSS $(rss_kb "${pids[$((i - 1))]}") KiB" | tee -a "$RUN/scale.txt"
			done
		fi
		for i in "${lp[@]}"; do wait "$i" || true; done
		cat "$RUN/scale-${kind}1.txt" "$RUN/scale-${kind}2.txt"
		for i2 in 0 1; do kill -TERM "${pids[$i2]}" 2>/dev/null || true; done
		sleep 1
	done
}

machine | tee "$RUN/machine.txt"
if [[ $WHAT == hotpath ]]; then
	hotpath
	exit 0
fi
start_backend
case $WHAT in
all | side | cold)
	[[ $WHAT == cold ]] || {
		start_bare
		start_nginx
		if [[ " $PROXIES " == *" bareloop "* ]]; then start_bareloop; fi
		if [[ " $PROXIES " == *" fasthttp "* ]]; then start_fasthttp; fi
		if [[ " $PROXIES " == *" before "* ]]; then start_allinone before "$BIN/before/segmesh"; fi
		if [[ " $PROXIES " == *" nethttp "* ]]; then start_nethttp; fi
	}
	start_aio
	[[ $WHAT == side ]] || cold
	[[ $WHAT == cold ]] || {
		start_split
		side
	}
	;;
scale) scale ;;
esac
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); took $(($(date +%s) - START)) s; files in $RUN"
