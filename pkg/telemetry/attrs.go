package telemetry

// Attribute and log keys, one per concept, used by every role.
const (
	AttrRole     = "role"
	AttrUPN      = "upn"
	AttrSPN      = "spn"
	AttrRealm    = "realm"
	AttrKRBCode  = "krb_code"
	AttrDeviceID = "device_id"
	AttrCmd      = "cmd"
	AttrStatus   = "status"
	AttrResult   = "result"
	AttrIssuer   = "issuer"
	AttrSerial   = "serial"
	AttrURL      = "url"
	// AttrPartition is a CRL's partition (pkg/crl Meta.Partition): empty
	// for a CRL of every certificate of its issuer.
	AttrPartition = "partition"
	AttrReason    = "reason"
	AttrState     = "state"
	// AttrTask names a role's own background work
	// (MetricBackgroundPanics): ticket_fetch, directory_lookup,
	// edge_identity_call, edge_ticket_call, tgt_refresh, crl_fetch.
	AttrTask = "task"
)
