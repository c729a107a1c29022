// Package admin serves the admin port: /healthz (the process is alive),
// /readyz (every role ready, else each role's reason), /metrics (Prometheus)
// and /status.json (the sections roles publish: TGT state, cache sizes, CRL
// ages). It is what an operator's probes and dashboards read.
package admin
