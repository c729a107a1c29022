// Package telemetry sets up what every role reports through: the slog logger
// with the one redaction rule (passwords, passcodes, keys, tickets, tokens and
// Authorization headers never reach a log line), the OpenTelemetry meter
// provider exported as Prometheus metrics on the admin port, and the tracer
// provider (OTLP when configured, no-op otherwise). Attribute names shared by
// every role are constants here.
package telemetry
