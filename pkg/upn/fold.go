package upn

// FoldASCII returns s with the ASCII letters A-Z lower-cased and every other
// byte unchanged: the case-insensitive key for a UPN in a cache, as Active
// Directory compares UPNs. Unicode case mapping (strings.ToLower,
// strings.EqualFold) must not be used for such keys: it maps the Kelvin sign
// U+212A to "k" and U+0130 (İ) to "i", so a certificate naming
// "mar\u212a@corp" would be served the cache entries of "mark@corp".
func FoldASCII(s string) string {
	i := 0
	for ; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			break
		}
	}
	if i == len(s) {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		if 'A' <= b[i] && b[i] <= 'Z' {
			b[i] += 'a' - 'A'
		}
	}
	return string(b)
}
