package trust

import (
	"crypto/tls"
	"time"
)

// VerifyConnectionFunc returns a tls.Config.VerifyConnection callback that verifies the
// device's chain with VerifyClientChain against the Store current returns (for example
// Reloader.Store) at the time now returns. With required false a handshake without a client
// certificate passes, and the caller decides later.
//
// Use it with ClientAuth tls.RequireAnyClientCert (tls.RequestClientCert when optional), so
// that crypto/tls does not verify against a ClientCAs pool that a reload may since have
// replaced, and serve the config from GetConfigForClient with ClientCAs set to the current
// Store's Pool, which names the CAs in the certificate request. VerifyConnection also runs
// on resumed sessions, so a device whose CA was removed cannot resume its way back in.
func VerifyConnectionFunc(current func() *Store, now func() time.Time, required bool) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 && !required {
			return nil
		}
		_, err := VerifyClientChain(current(), cs.PeerCertificates, now())
		return err
	}
}
