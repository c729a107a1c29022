// Package fleetsim is a deterministic model of a segmesh fleet over a day:
// N edges, M ticket replicas and D ActiveSync devices (one user each) that
// hold Pings with a 15–30 minute heartbeat, Sync when mail arrives, lose
// their connection now and then (cell hand-over, NAT timeout), and live
// through a rolling restart of the edges, the loss of a ticket replica and
// the publication of a large CRL. Each device is played on its own random
// stream (seed, device number), so a run is reproducible and independent of
// the order devices are played in.
//
// The costs it charges are inputs measured on this machine
// (docs/benchmarks.md): edge CPU per keep-alive request and per new TLS
// connection, memory per held Ping, the ticket lifetime, the CRL's bytes per
// serial. It reports the peak (busiest minute) and mean KDC exchanges per
// second, edge cores and memory, ticket RPCs, and the bytes of CRL fan-out;
// docs/sizing.md turns these into fleet shapes and checks the model against
// the load generator's runs. It is written here because no fleet simulator
// models Kerberos ticket caches behind an L4 balancer.
package fleetsim
