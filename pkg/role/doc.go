// Package role defines the lifecycle every segmesh role (crl, identity,
// ticket, edge) follows — New does no I/O, Start does fail-fast setup, Ready
// gives the reason it is not ready, Stop drains — and the Group that starts a
// set of roles in the fixed order, reports their health over grpc.health.v1
// and /readyz, and stops them in reverse. It knows no concrete role: the
// binary hands it constructors, so pkg/ never imports services/.
package role
