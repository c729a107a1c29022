// Package suite wires segmesh together: the registry of roles (crl,
// identity, ticket, edge), the process-wide telemetry, the admin server, the
// gRPC listener for split mode, and Run, which `segmesh run` calls. It sits
// above services/ (it imports every role) and below cmd/.
package suite
