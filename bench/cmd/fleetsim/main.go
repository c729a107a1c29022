// Command fleetsim plays a day of a segmesh fleet (bench/fleetsim) and
// prints its load: KDC exchanges per second, edge cores and memory, ticket
// RPCs, CRL fan-out. Deterministic for a given -seed. See docs/sizing.md.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/segmesh/segmesh/bench/fleetsim"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	p := fleetsim.Default(100000, 4, 3)
	fs := flag.NewFlagSet("fleetsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&p.Fleet.Devices, "devices", p.Fleet.Devices, "devices (one user each)")
	fs.IntVar(&p.Fleet.Edges, "edges", p.Fleet.Edges, "edge instances")
	fs.IntVar(&p.Fleet.Replicas, "replicas", p.Fleet.Replicas, "ticket replicas")
	fs.DurationVar(&p.Fleet.Duration, "duration", p.Fleet.Duration, "time played")
	fs.Uint64Var(&p.Fleet.Seed, "seed", p.Fleet.Seed, "random seed")
	fs.DurationVar(&p.Costs.EdgeCPUPerRequest, "cpu-request", p.Costs.EdgeCPUPerRequest, "edge CPU per keep-alive request")
	fs.DurationVar(&p.Costs.EdgeCPUPerHandshake, "cpu-handshake", p.Costs.EdgeCPUPerHandshake, "edge CPU per new TLS connection and its first request")
	fs.Int64Var(&p.Costs.BytesPerHeldPing, "bytes-ping", p.Costs.BytesPerHeldPing, "edge RSS per held Ping")
	fs.Int64Var(&p.Costs.BytesPerStormConnection, "bytes-storm", p.Costs.BytesPerStormConnection, "edge RSS each new connection adds for the minute it arrives in (a reconnect storm's handshakes)")
	fs.Int64Var(&p.Costs.EdgeBaseBytes, "bytes-base", p.Costs.EdgeBaseBytes, "idle edge RSS")
	fs.DurationVar(&p.Costs.TicketLifetime, "ticket-lifetime", p.Costs.TicketLifetime, "service ticket lifetime")
	fs.DurationVar(&p.Behaviour.HeartbeatMin, "heartbeat-min", p.Behaviour.HeartbeatMin, "shortest Ping heartbeat")
	fs.DurationVar(&p.Behaviour.HeartbeatMax, "heartbeat-max", p.Behaviour.HeartbeatMax, "longest Ping heartbeat")
	fs.Float64Var(&p.Behaviour.MailPerHourDay, "mail-day", p.Behaviour.MailPerHourDay, "mails per device per working hour")
	fs.Float64Var(&p.Behaviour.MailPerHourNight, "mail-night", p.Behaviour.MailPerHourNight, "mails per device per other hour")
	fs.Float64Var(&p.Behaviour.ReconnectsPerHour, "reconnects", p.Behaviour.ReconnectsPerHour, "lost connections per device per hour")
	fs.DurationVar(&p.Events.RollingRestartAt, "restart-at", p.Events.RollingRestartAt, "rolling restart start (0: none)")
	fs.DurationVar(&p.Events.RestartSpacing, "restart-spacing", p.Events.RestartSpacing, "time between two edges' restarts")
	fs.DurationVar(&p.Events.ReplicaLostAt, "replica-lost-at", p.Events.ReplicaLostAt, "ticket replica 0 lost (0: never)")
	fs.DurationVar(&p.Events.CRLAt, "crl-at", p.Events.CRLAt, "CRL publication (0: none)")
	fs.IntVar(&p.Events.CRLSerials, "crl-serials", p.Events.CRLSerials, "serials in the published CRL")
	jsonOut := fs.Bool("json", false, "print the parameters and result as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	start := time.Now()
	r, err := fleetsim.Run(p)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if *jsonOut {
		if err := json.NewEncoder(stdout).Encode(map[string]any{"params": p, "result": r}); err != nil {
			return 1
		}
		return 0
	}
	fmt.Fprintf(stdout, "fleet: %d devices, %d edges, %d ticket replicas, %s played, seed %d (%s)\n",
		p.Fleet.Devices, p.Fleet.Edges, p.Fleet.Replicas, p.Fleet.Duration, p.Fleet.Seed, time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(stdout, "requests %d, new connections %d (%d in the rolling restart), ticket RPCs %d, KDC exchanges %d\n",
		r.Requests, r.Handshakes, r.RestartHandshakes, r.TicketRPCs, r.KDCExchanges)
	fmt.Fprintf(stdout, "KDC exchanges/s: peak minute %.2f, mean %.3f; in the hour after losing a replica %d\n", r.PeakKDCPerSec, r.MeanKDCPerSec, r.KDCAfterReplicaLoss)
	fmt.Fprintf(stdout, "edge cores: busiest edge's peak minute %.3f, mean per edge %.3f\n", r.PeakEdgeCores, r.MeanEdgeCores)
	fmt.Fprintf(stdout, "held Pings: at most %d on one edge, RSS %.0f MiB\n", r.PeakHeldPerEdge, float64(r.PeakEdgeBytes)/(1<<20))
	fmt.Fprintf(stdout, "ticket RPCs/s peak minute %.1f (%.3f cores over the replicas); ticket cache %.0f MiB per replica (with one replica lost)\n",
		r.PeakTicketRPCPerSec, r.ReplicaCores, float64(r.ReplicaBytes)/(1<<20))
	fmt.Fprintf(stdout, "CRL fan-out: %.1f MiB to the edges\n", float64(r.CRLFanoutBytes)/(1<<20))
	return 0
}
