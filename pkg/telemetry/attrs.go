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
	AttrReason   = "reason"
	AttrState    = "state"
)
