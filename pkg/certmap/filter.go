package certmap

// userCertificateFilter returns the search filter for the user whose
// userCertificate equals der: (&(objectClass=user)(userCertificate=…)) with
// every byte of der written as a \xx escape (RFC 4515 3). Escaping every
// byte, not just the metacharacters, keeps the filter printable and leaves
// nothing of the device's bytes to interpret; ldap.EscapeFilter is for text
// and would pass most bytes through raw.
func userCertificateFilter(der []byte) string {
	const prefix, suffix = "(&(objectClass=user)(userCertificate=", "))"
	out := make([]byte, len(prefix)+3*len(der)+len(suffix))
	n := copy(out, prefix)
	n += escapeInto(out[n:], der)
	copy(out[n:], suffix)
	return string(out)
}

// escapeInto writes every byte of v into dst as a backslash and two
// lower-case hex digits and returns 3*len(v); dst must be that long.
func escapeInto(dst, v []byte) int {
	const hex = "0123456789abcdef"
	for i, c := range v {
		dst[3*i] = '\\'
		dst[3*i+1] = hex[c>>4]
		dst[3*i+2] = hex[c&0x0f]
	}
	return 3 * len(v)
}

// EscapeBytes returns v as an RFC 4515 assertion value with every byte
// escaped as \xx, safe to place in any filter position that takes a value.
func EscapeBytes(v []byte) string {
	out := make([]byte, 3*len(v))
	escapeInto(out, v)
	return string(out)
}
