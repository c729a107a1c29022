package negotiate

import (
	"crypto/md5" //nolint:gosec // the GSS checksum's channel-binding field is an MD5 (RFC 4121 section 4.1.1.2)
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/binary"
)

// Binding is the 16-byte Bnd field of the Kerberos GSS checksum (RFC 4121
// section 4.1.1.2): the MD5 of a gss_channel_bindings_struct. The zero
// value means no channel binding.
type Binding [md5.Size]byte

// tlsServerEndPointPrefix starts the channel-binding data of RFC 5929
// section 4.
const tlsServerEndPointPrefix = "tls-server-end-point:"

// TLSServerEndPoint returns the Binding of a TLS connection whose server
// presented cert, as Windows clients send it to IIS for Extended Protection:
// application data "tls-server-end-point:" followed by the hash of the
// certificate's DER (RFC 5929 section 4.1: the hash of its signature
// algorithm, SHA-256 when that is MD5 or SHA-1 or has none), and no
// addresses (type 0, length 0), hashed the way MIT, Heimdal and Windows hash
// gss_channel_bindings_struct: each field's 32-bit little-endian type or
// length followed by its bytes.
func TLSServerEndPoint(cert *x509.Certificate) Binding {
	var sum []byte
	switch cert.SignatureAlgorithm {
	case x509.SHA384WithRSA, x509.ECDSAWithSHA384, x509.SHA384WithRSAPSS:
		s := sha512.Sum384(cert.Raw)
		sum = s[:]
	case x509.SHA512WithRSA, x509.ECDSAWithSHA512, x509.SHA512WithRSAPSS:
		s := sha512.Sum512(cert.Raw)
		sum = s[:]
	default:
		s := sha256.Sum256(cert.Raw)
		sum = s[:]
	}
	app := make([]byte, 0, len(tlsServerEndPointPrefix)+len(sum))
	app = append(append(app, tlsServerEndPointPrefix...), sum...)
	return ChannelBindings(app)
}

// ChannelBindings returns the Binding of a gss_channel_bindings_struct with
// no addresses and the given application data.
func ChannelBindings(appData []byte) Binding {
	var hdr [20]byte // initiator type, length; acceptor type, length; application data length
	binary.LittleEndian.PutUint32(hdr[16:], uint32(len(appData)))
	h := md5.New() //nolint:gosec // see the import
	h.Write(hdr[:])
	h.Write(appData)
	var b Binding
	h.Sum(b[:0])
	return b
}
