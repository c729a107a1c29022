#!/usr/bin/env bash
# bench/drain.sh — issue 24: restarting one of two edges while phones hold
# ActiveSync Pings through them, on this machine, against the lab's KDC.
#
#   segmesh --roles=crl,identity,ticket   127.0.0.24 (gRPC :9443, admin :9090)
#   segmesh --roles=edge  ×2              127.0.0.41:8443 / 127.0.0.42:8443 (admin :9090),
#                                         segmesh.edge.drainGraceSeconds=$GRACE
#   negbackend (holds every Ping ?hold=) 127.0.0.30:8080
#   segload -kind ping, one worker per phone, a stand-in balancer polling each
#   edge's /readyz every $READY_EVERY (-targets/-ready), phones back off
#   $BACKOFF after an error.
#
# Once every phone holds a Ping, edge 1 gets SIGTERM and is started again as
# soon as it has exited. Reported: device-visible errors (segload's errors:
# any non-200 or transport error), the time from SIGTERM until the backend
# holds every Ping again (polled every 100 ms), edge 1's exit time after
# SIGTERM, and the ticket role's KDC exchanges during the restart.
#
# Usage (as root, lab up): flock /tmp/segmesh-lab.lock bash bench/drain.sh
# Knobs: PINGS (4900 per edge: after the restart one edge holds 2 × PINGS
# device and upstream descriptors, under the 20,000 open-files limit),
# RAMP (60 s), GRACE (2 s), READY_EVERY (1s), READY_FAILURES (3: unanswered
# readiness polls in a row before the balancer takes an edge out; 1 was the
# old stand-in), BACKOFF (5s), CERTS (1000), LOAD_CPUS (1: the CPUs segload
# may use; "0,1" lets the phones use what the edges leave, as a real fleet's
# phones are not on the gateway's CPU), EDGE2_CPUS (0: the surviving edge),
# EDGE1_CPUS (0: the restarted edge), ROLES_CPUS (0: crl, identity, ticket),
# BACKEND_CPUS (1: negbackend, the Exchange stand-in). The defaults are
# session 6's layout; ROLES_CPUS=1 leaves CPU 0 to the two edges alone, so
# that the surviving edge has a core the harness (segload and negbackend,
# the phones and Exchange, which took more CPU than edge 2 in session 6's
# runs) does not use. Keep edge 1 off the harness's CPU: with EDGE1_CPUS=1
# the stopping edge, starved by 4,900 reconnecting phones, closed its
# listener 4.5 s after the grace, and the phones took 17 s (p50) to hold a
# Ping again, most of them back on edge 1 restarted (session 7, 20:20),
# SPREAD_MS (unset: the configuration's default; a number sets
# segmesh.edge.drainSpreadMillis on both edges: the window over which a
# stopping edge answers its held Pings, 0 all at once),
# TICKET_KEYS (1: both edges share a TLS session ticket key file,
# segmesh.edge.tlsSessionTicketKeyFile, so a phone resumes its session on
# the other edge; 0: per-process keys, every reconnect after the restart is
# a full handshake with the certificate, session 5's runs), PHONE_RESUME (1:
# each phone keeps its TLS session, segload -resume, as iOS and Android do),
# PHONE_CLIENT (phone: each phone drives its own TLS connection by hand,
# segload -client phone, so that the harness takes less of the CPU it shares
# with the gateway: a real phone's CPU is its own; net/http: net/http's
# client, sessions 5 to 7's runs),
# HARNESS_GOGC (unset: Go's default 100; e.g. 400 runs segload and negbackend,
# the phones and Exchange, with less garbage collection, so that on this
# 2-core machine less of the shared CPU goes to the harness; the segmesh
# processes are never given it), HARNESS_NICE (unset: segload and negbackend
# at the segmesh processes' priority; e.g. 19 runs them niced, so that with
# LOAD_CPUS=0,1 the phones use only the CPU the gateway leaves, as a real
# fleet's phones and Exchange have CPUs of their own; the segmesh processes
# are never niced),
# BENCH_WORK (/var/tmp/segmesh-bench). Everything started is stopped by PID.
# The result gives the edges' resumed and full handshakes across the restart
# (segmesh_edge_tls_handshakes_total).
# CPU profiles from SIGTERM to grace + 8 s of edge 2, segload and negbackend
# are left in $BENCH_WORK/drain/{edge2,segload,negbackend}-takeover.pprof,
# edge 2's runtime.MemStats before SIGTERM and after the takeover in
# edge2-{held,after}.memstats, and CPU 0/1 busy every 100 ms in timeline.txt.
# Each phone's time without a held Ping comes from negbackend's /_negbackend/gaps.
set -euo pipefail

cd "$(dirname "$0")/.."
WORK=${BENCH_WORK:-/var/tmp/segmesh-bench}
PINGS=${PINGS:-4900}
RAMP=${RAMP:-60}
GRACE=${GRACE:-2}
READY_EVERY=${READY_EVERY:-1s}
READY_FAILURES=${READY_FAILURES:-3}
BACKOFF=${BACKOFF:-5s}
CERTS=${CERTS:-1000}
LOAD_CPUS=${LOAD_CPUS:-1}
EDGE1_CPUS=${EDGE1_CPUS:-0}
EDGE2_CPUS=${EDGE2_CPUS:-0}
ROLES_CPUS=${ROLES_CPUS:-0}
BACKEND_CPUS=${BACKEND_CPUS:-1}
SPREAD_MS=${SPREAD_MS:-}
TICKET_KEYS=${TICKET_KEYS:-1}
PHONE_RESUME=${PHONE_RESUME:-1}
PHONE_CLIENT=${PHONE_CLIENT:-phone}
HARNESS_GOGC=${HARNESS_GOGC:-}
HARNESS_ENV=(env)
[[ -z $HARNESS_GOGC ]] || HARNESS_ENV=(env "GOGC=$HARNESS_GOGC")
HARNESS_NICE=${HARNESS_NICE:-}
[[ -z $HARNESS_NICE ]] || HARNESS_ENV+=(nice -n "$HARNESS_NICE")
TOTAL=$((2 * PINGS))

while IFS='=' read -r k v; do
	[[ $k == LAB_* ]] && export "$k=$v"
done < <(bash deploy/lab/lab.sh env)
[[ -n ${LAB_DIR:-} && -f ${LAB_SEGMESH_CONFIG:-} ]] || {
	echo "drain: the lab is not set up (bash deploy/lab/lab.sh up)" >&2
	exit 1
}
RUN=$WORK/drain
rm -rf "$RUN"
mkdir -p "$WORK/bin" "$RUN"
PIDS=$RUN/pids
: >"$PIDS"
cleanup() {
	local pid name
	while read -r pid name; do kill -TERM "$pid" 2>/dev/null || true; done <"$PIDS"
	sleep 1
	while read -r pid name; do kill -KILL "$pid" 2>/dev/null && echo "drain: killed $name ($pid)" >&2; done <"$PIDS"
	: >"$PIDS"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() {
	local name=$1 cpu=$2
	shift 2
	taskset -c "$cpu" "$@" >>"$RUN/$name.log" 2>&1 &
	echo "$! $name" >>"$PIDS"
	eval "PID_${name//-/_}=$!"
}
wait_http() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		[[ $(curl -s -o /dev/null -w '%{http_code}' "$1" 2>/dev/null) == 200 ]] && return 0
		sleep 0.1
	done
	return 1
}
holding() { curl -s --max-time 1 http://127.0.0.30:8080/_negbackend/holding || echo 0; }
kdc() { curl -s http://127.0.0.24:9090/metrics | awk '/^segmesh_ticket_kdc_exchanges_total/ {s += $NF} END {print s + 0}'; }
# handshakes ADMIN: an edge's accepted TLS handshakes, "resumed full".
handshakes() {
	curl -s --max-time 2 "http://$1/metrics" | awk '/^segmesh_edge_tls_handshakes_total/ && /result="resumed"/ {r += $NF}
		/^segmesh_edge_tls_handshakes_total/ && /result="full"/ {f += $NF} END {print r + 0, f + 0}'
}
now_ms() { date +%s%3N; }
# utime+stime, 100 ticks/s; 0 once the process is gone (segload ends its run
# on its own when a slow machine stretched the ramp).
cpu_ms() { awk '{print ($14 + $15) * 10}' "/proc/$1/stat" 2>/dev/null || echo 0; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# busy and total jiffies of CPUs 0 and 1 (/proc/stat: user nice system idle
# iowait irq softirq steal; idle and iowait are not busy).
cpu_jiffies() { awk '$1 == "cpu0" || $1 == "cpu1" {t = 0; for (i = 2; i <= 9; i++) t += $i; printf "%d %d ", t - $5 - $6, t}' /proc/stat; }

# phases FILE T0 CLOSED EXITED READY: segload's error log counted by phase
# of the restart (ms after SIGTERM), edge, stage and kind, with the first
# and last error's time.
phases() {
	[[ -s $1 ]] || { echo "  none"; return; }
	jq -rs --argjson t0 "$2" --argjson closed "$3" --argjson exited "${4:-1e12}" --argjson ready "${5:-1e12}" '
		map(. + {ms: (.t_ms - $t0)})
		| map(. + {phase: (if .ms < 0 then "1 before SIGTERM" elif .ms < $closed then "2 grace (listener open)"
			elif .ms < $exited then "3 listener closed" elif .ms < $ready then "4 exited, not ready" else "5 ready again" end)})
		| group_by([.phase, .edge, .stage, .kind, .reused])
		| map("  \(.[0].phase)  edge \(.[0].edge)  \(.[0].stage)/\(.[0].kind)\(if .[0].reused then " (kept-alive conn)" else "" end): \(length)  [\(map(.ms) | min)..\(map(.ms) | max) ms]")[]' "$1"
}

echo "== building"
go build -o "$WORK/bin/" ./bench/cmd/segload ./bench/cmd/negbackend ./cmd/segmesh
BIN=$WORK/bin
echo "machine: nproc=$(nproc) load average $(cut -d' ' -f1-3 /proc/loadavg); open files $(ulimit -n); harness GOGC ${HARNESS_GOGC:-default}"
echo "CPUs: edge 2 (survives) $EDGE2_CPUS, edge 1 (restarted) $EDGE1_CPUS, roles $ROLES_CPUS, segload (phones) $LOAD_CPUS, negbackend (Exchange) $BACKEND_CPUS"

config() {
	local dir=$1 extra=$2
	mkdir -p "$dir"
	jq --arg s "$dir/crl-cache" --argjson g "$GRACE" \
		'.segmesh.edge.exchangeUrls=["http://127.0.0.30:8080"] | .segmesh.crl.stateDir=$s | .segmesh.edge.drainGraceSeconds=$g' \
		"$LAB_SEGMESH_CONFIG" | jq "$extra" >"$dir/config.json"
}
config "$RUN/roles" '.segmesh.edge.listen="127.0.0.24:8443" | .segmesh.admin.listen="127.0.0.24:9090" | .segmesh.grpc.listen="127.0.0.24:9443"'
tickets=""
if [[ $TICKET_KEYS == 1 ]]; then
	# One key file both edges read (a Secret in Kubernetes): 32 random bytes, mode 0600.
	(umask 077 && head -c 32 /dev/urandom >"$RUN/tickets.key")
	tickets="| .segmesh.edge.tlsSessionTicketKeyFile=\"$RUN/tickets.key\""
fi
spread=""
[[ -z $SPREAD_MS ]] || spread="| .segmesh.edge.drainSpreadMillis=$SPREAD_MS"
for i in 1 2; do
	config "$RUN/edge$i" ".segmesh.edge.listen=\"127.0.0.4$i:8443\" | .segmesh.admin.listen=\"127.0.0.4$i:9090\" | .segmesh.admin.pprof=true |
		.segmesh.peers={\"identity\":\"127.0.0.24:9443\",\"ticket\":\"127.0.0.24:9443\",\"crl\":\"127.0.0.24:9443\"} $tickets $spread"
done
RESUME=()
[[ $PHONE_RESUME == 1 ]] && RESUME=(-resume)

start negbackend "$BACKEND_CPUS" "${HARNESS_ENV[@]}" "$BIN/negbackend" -listen 127.0.0.30:8080 -pprof 127.0.0.30:6060 -keytab "$LAB_EXCHANGE_KEYTAB" -spn "$LAB_TARGET_SPN" -verify-every 100 -max-hold 1h
start roles "$ROLES_CPUS" "$BIN/segmesh" run --config "$RUN/roles/config.json" --roles=crl,identity,ticket
wait_http http://127.0.0.24:9090/readyz 60 || { echo "drain: roles not ready: $(tail -3 "$RUN/roles.log")" >&2; exit 1; }
for i in 1 2; do
	cpus=EDGE${i}_CPUS
	start "edge$i" "${!cpus}" "$BIN/segmesh" run --config "$RUN/edge$i/config.json" --roles=edge
	wait_http "http://127.0.0.4$i:9090/readyz" 60 || { echo "drain: edge $i not ready: $(tail -3 "$RUN/edge$i.log")" >&2; exit 1; }
done

rss_idle2=$(rss_kb "$PID_edge2")
SEGLOAD=("${HARNESS_ENV[@]}" taskset -c "$LOAD_CPUS" "$BIN/segload" -server-ca "$LAB_SERVER_CA" -server-name "$LAB_EDGE_HOST")
"$BIN/segload" -mint-out "$RUN/certs" -ca-cert "$LAB_CA_INTER" -ca-key "$LAB_DIR/pki/ca/inter.key" -certs "$CERTS" -users "$LAB_GENERATED_USERS" -duration 1s
kdc_cold=$(kdc)
echo "== warm-up: each certificate once through edge 1 (the ticket role fetches each user's tickets)"
"${SEGLOAD[@]}" -url https://127.0.0.41:8443 -cert-dirs "$RUN/certs/d*" -mode handshake -c 16 -n "$CERTS" -duration 120s -label warm | sed -n 2,4p
kdc_warm=$(kdc)

echo "== $TOTAL phones hold Pings over two edges (ramp ${RAMP}s)"
# Long enough for a ramp a loaded machine stretches and the 60 s after
# SIGTERM; segload is stopped (SIGTERM: it reports and exits) once measured.
DUR=$((RAMP + 400))
"${SEGLOAD[@]}" -url https://127.0.0.41:8443 -cert-dirs "$RUN/certs/d*" -kind ping -hold 3000s -mode keepalive \
	-c "$TOTAL" -ramp "${RAMP}s" -duration "${DUR}s" -src 127.0.1.1,127.0.2.1 -error-backoff "$BACKOFF" \
	-targets 127.0.0.41:8443,127.0.0.42:8443 -ready http://127.0.0.41:9090/readyz,http://127.0.0.42:9090/readyz -ready-every "$READY_EVERY" -ready-failures "$READY_FAILURES" \
	-error-log "$RUN/errors.jsonl" -pprof 127.0.0.30:6061 -label "phones" -client "$PHONE_CLIENT" "${RESUME[@]}" >"$RUN/segload.txt" 2>&1 &
echo "$! segload" >>"$PIDS"
LOADPID=$!
t=$SECONDS
while (($(holding) < TOTAL)); do
	if ((SECONDS - t > RAMP + 60)); then
		echo "drain: only $(holding) of $TOTAL Pings held after $((SECONDS - t)) s" >&2
		exit 1
	fi
	sleep 1
done
echo "all $TOTAL Pings held after $((SECONDS - t)) s; edge 1 holds $((($(ls /proc/$PID_edge1/fd | wc -l)) / 2)) device+upstream pairs (fds/2)"
sleep 3
kdc_before=$(kdc)
rss_held2=$(rss_kb "$PID_edge2") cpu_held2=$(cpu_ms "$PID_edge2")
read -r hs_res0 hs_full0 < <(handshakes 127.0.0.42:9090)

curl -s -o "$RUN/edge2-held.memstats" "http://127.0.0.42:9090/debug/pprof/heap?debug=1"
echo "== SIGTERM to edge 1"
# CPU profiles of edge 2, the load generator and the backend while edge 2
# takes the phones over (go tool pprof): which side is the bottleneck.
for p in edge2:127.0.0.42:9090 segload:127.0.0.30:6061 negbackend:127.0.0.30:6060; do
	curl -s -o "$RUN/${p%%:*}-takeover.pprof" "http://${p#*:}/debug/pprof/profile?seconds=$((GRACE + 8))" &
done
t0=$(now_ms)
# Edge 2's /readyz answer time while it takes the phones over, every 250 ms
# until grace + 10 s, from a process of its own (curl): a Kubernetes
# readiness probe times out after 1 s by default, and the stand-in balancer
# (in segload, on the harness's busy CPU) took edge 2 out in most runs.
(for ((i = 0; i < (GRACE + 10) * 4; i++)); do
	curl -s -o /dev/null -w '%{http_code} %{time_total}\n' --max-time 10 http://127.0.0.42:9090/readyz || echo "000 10"
	sleep 0.25
done >"$RUN/readyz2.txt") &
READYZ_PROBE=$!
# The exit to 10 ms (the loop below samples slower under load).
(while kill -0 "$PID_edge1" 2>/dev/null; do sleep 0.01; done; now_ms >"$RUN/edge1-exit-ms") &
cpu0_roles=$(cpu_ms "$PID_roles") cpu0_neg=$(cpu_ms "$PID_negbackend") cpu0_load=$(cpu_ms "$LOADPID")
kill -TERM "$PID_edge1"
exited="" low=$TOTAL rehold="" rehold99="" ready=""
: >"$RUN/timeline.txt"
while :; do
	h=$(holding)
	((h < low)) && low=$h
	ms=$(($(now_ms) - t0))
	echo "$ms $h $(cpu_jiffies)" >>"$RUN/timeline.txt"
	if [[ -z $exited ]] && ! kill -0 "$PID_edge1" 2>/dev/null; then
		exited=$ms
		start edge1 "$EDGE1_CPUS" "$BIN/segmesh" run --config "$RUN/edge1/config.json" --roles=edge
	fi
	if [[ -n $exited && -z $ready && $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 http://127.0.0.41:9090/readyz) == 200 ]]; then
		ready=$(($(now_ms) - t0))
	fi
	# Pings answered at the grace's end dip the count again: the re-hold
	# times are those from which the count stays up (the first sample
	# after the last one below).
	if ((h < TOTAL * 99 / 100)); then rehold99=""; elif [[ -z $rehold99 ]]; then rehold99=$ms; fi
	if ((h < TOTAL)); then rehold=""; elif [[ -z $rehold ]]; then rehold=$ms; fi
	# Done once edge 1 is back and every Ping has stayed held for 3 s.
	[[ -n $exited && -n $ready && -n $rehold ]] && ((ms - rehold >= 3000)) && break
	if ((ms > 60000)); then
		echo "drain: after 60 s: holding $h of $TOTAL, edge 1 exited: ${exited:-no}" >&2
		break
	fi
	sleep 0.1
done
echo "edge 1 ready again ${ready:-never} ms after SIGTERM"
wait "$READYZ_PROBE" || true
[[ -s $RUN/edge1-exit-ms ]] && exited=$(($(cat "$RUN/edge1-exit-ms") - t0))
# When edge 1 closed its listener (its log's time, UTC, to the millisecond).
closed=$(grep -m1 'msg="stopping: closing the listener' "$RUN/edge1.log" | sed -E 's/^time=([^ ]+) .*/\1/')
closed_ms=$(($(date -d "$closed" +%s%3N) - t0))
sleep 2
kdc_after=$(kdc)
rss_after2=$(rss_kb "$PID_edge2") cpu_after2=$(cpu_ms "$PID_edge2")
read -r hs_res2 hs_full2 < <(handshakes 127.0.0.42:9090)
read -r hs_res1 hs_full1 < <(handshakes 127.0.0.41:9090)
# What edge 2's memory is made of after the takeover (runtime.MemStats at
# the end of the heap profile: HeapInuse, HeapIdle, HeapReleased, StackInuse, NextGC).
curl -s -o "$RUN/edge2-after.memstats" "http://127.0.0.42:9090/debug/pprof/heap?debug=1"
gaps=$(curl -s --max-time 2 http://127.0.0.30:8080/_negbackend/gaps || echo unknown)
cpu_roles=$(($(cpu_ms "$PID_roles") - cpu0_roles)) cpu_neg=$(($(cpu_ms "$PID_negbackend") - cpu0_neg)) cpu_load=$(($(cpu_ms "$LOADPID") - cpu0_load))
echo "edge 2 now holds $((($(ls /proc/$PID_edge2/fd | wc -l)) / 2)) fd pairs"
echo "stopping the load generator"
kill -TERM "$LOADPID" 2>/dev/null || true
wait "$LOADPID" || true
{
	echo "phones: $TOTAL (2 × $PINGS), users $LAB_GENERATED_USERS, grace ${GRACE}s, Pings answered over ${SPREAD_MS:-the default} ms (SPREAD_MS), readiness polled every $READY_EVERY (out after $READY_FAILURES unanswered)"
	echo "CPUs: edge 2 (survives) $EDGE2_CPUS, edge 1 (restarted) $EDGE1_CPUS, roles $ROLES_CPUS, segload (phones) $LOAD_CPUS, negbackend (Exchange) $BACKEND_CPUS, harness nice ${HARNESS_NICE:-0}; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "TLS session ticket keys: $([[ $TICKET_KEYS == 1 ]] && echo "shared by both edges" || echo "per process") (TICKET_KEYS=$TICKET_KEYS); phones keep their sessions: $([[ $PHONE_RESUME == 1 ]] && echo yes || echo no) (PHONE_RESUME=$PHONE_RESUME); phones' client: $PHONE_CLIENT (PHONE_CLIENT)"
	echo "TLS handshakes across the restart (segmesh_edge_tls_handshakes_total): edge 2 resumed $((hs_res2 - hs_res0)) full $((hs_full2 - hs_full0)); edge 1 restarted resumed $hs_res1 full $hs_full1"
	echo "edge 1 exit after SIGTERM: ${exited:-none} ms"
	echo "THE AIM (every device holds a Ping again within 5 s), read two ways:"
	# negbackend's gaps: gaps=N p50_ms= p99_ms= max_ms= over_5s= waiting=
	read -r g_n g_50 g_99 g_max g_over g_wait < <(sed -E 's/[a-z0-9_]+=//g' <<<"$gaps")
	echo "  per device (what a phone notices): from its Ping's answer to its next Ping held at Exchange, $g_n phones: p50 ${g_50} ms, p99 ${g_99} ms, max ${g_max} ms; over 5 s: ${g_over}; still without a Ping: ${g_wait} (negbackend: $gaps)"
	if ((low < TOTAL)); then
		echo "  whole fleet: all $TOTAL Pings held again ${rehold:-never} ms after SIGTERM$([[ -n $rehold ]] && echo ", $((rehold - GRACE * 1000)) ms after the grace's end") (99 %: ${rehold99:-never} ms after SIGTERM); lowest $low held"
	else
		echo "  whole fleet: never fewer than $TOTAL Pings held (sampled every 100 ms)"
	fi
	for f in held after; do
		echo "edge 2 memory ($f): $(grep -E '^# (HeapInuse|HeapIdle|HeapReleased|StackInuse|NextGC|Sys) =' "$RUN/edge2-$f.memstats" | awk '{printf "%s %d MiB  ", $2, $4 / 1048576}')"
	done
	echo "edge 2: RSS idle ${rss_idle2} KiB, holding its $PINGS ${rss_held2} KiB, after taking over ${rss_after2} KiB; CPU from SIGTERM to re-hold + 2 s: $((cpu_after2 - cpu_held2)) ms"
	echo "CPU from SIGTERM to re-hold + 2 s: edge 2 $((cpu_after2 - cpu_held2)) ms (CPU $EDGE2_CPUS), roles $cpu_roles ms (CPU $ROLES_CPUS); segload $cpu_load ms (CPU $LOAD_CPUS), negbackend $cpu_neg ms (CPU $BACKEND_CPUS)"
	echo "timeline (ms after SIGTERM: Pings held at the end of each 500 ms, CPU 0 and CPU 1 busy):"
	awk 'NR > 1 && $1 >= 0 {b = int($1 / 500); h[b] = $2; b0[b] += $3 - p3; t0[b] += $4 - p4; b1[b] += $5 - p5; t1[b] += $6 - p6; last = b}
		{p3 = $3; p4 = $4; p5 = $5; p6 = $6}
		END {for (i = 0; i <= last; i++) if (i in h) printf "  %5d %6d  cpu0 %3d%%  cpu1 %3d%%\n", i * 500, h[i], t0[i] ? 100 * b0[i] / t0[i] : 0, t1[i] ? 100 * b1[i] / t1[i] : 0}' "$RUN/timeline.txt"
	echo "KDC exchanges: warm-up $((kdc_warm - kdc_cold)) (users $LAB_GENERATED_USERS), during the Ping ramp $((kdc_before - kdc_warm)), across the restart $((kdc_after - kdc_before))"
	echo "load generator:"
	grep -v '^balancer: ' "$RUN/segload.txt"
	awk '{n++; t = $2 * 1000; if (t > max) max = t; if (t > 1000) slow++; if ($1 != 200) bad++}
		END {printf "edge 2 /readyz while taking over (curl every 250 ms to grace + 10 s): %d probes, slowest %d ms, over 1 s: %d, not 200: %d\n", n, max, slow, bad}' "$RUN/readyz2.txt"
	echo "stand-in balancer (ms after SIGTERM):"
	awk -v t0="$t0" '/^balancer: / {printf "  %d %s %s %s\n", $2 - t0, $3, $4, $5}' "$RUN/segload.txt"
	echo "errors by phase (ms after SIGTERM: listener closed $closed_ms, exit $exited, ready again $ready), edge, stage/kind:"
	phases "$RUN/errors.jsonl" "$t0" "$closed_ms" "$exited" "$ready"
} | tee "$RUN/result.txt"
