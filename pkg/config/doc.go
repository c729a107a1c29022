// Package config reads, validates and (for `.plaintext` secrets) rewrites
// segmesh's config.json, in SEG V2's vocabulary: clientCertTrustStorePath,
// clientCertTrustStorePasscode, Require Client Certificate, the KCD settings
// with domain / domain controller pairs, and the custom gateway settings with
// SEG's dotted keys (cert.mapping.*, enable.cert.revocation.validation,
// remote.crl.*, fail.hard.on.crl.download.failure.during.server.startup),
// plus segmesh's own section (listeners, server certificate, Exchange
// upstreams, peers). Every role's configuration is derived from one Config;
// `segmesh run` and `segmesh config check` use the same Load.
package config
