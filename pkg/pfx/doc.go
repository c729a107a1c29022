// Package pfx reads the certificates out of a PKCS#12 (PFX, .p12) file.
//
// It serves the trust store (package trust): SEG's clientCertTrustStorePath may name one
// password-protected PFX holding the CA certificates that issue device certificates. No Go
// library reads such certificate-only files as openssl 3 and Windows write them (see
// DESIGN.md, "The PFX trust store"), so this is a small reader of our own, built on the
// standard library's crypto and golang.org/x/crypto/cryptobyte.
//
// Decode verifies the MAC (HMAC with SHA-1 or SHA-2, key from the PKCS#12 KDF of RFC 7292
// appendix B; a file without one is refused, ErrNoMAC), decrypts the encrypted safe
// contents and returns the certificates of the certificate bags. Supported content encryption:
//
//   - PBES2 (RFC 8018) with PBKDF2 (HMAC-SHA-1/224/256/384/512) and AES-128/192/256-CBC or
//     DES-EDE3-CBC: openssl 3's default and Windows' AES256-SHA256 export;
//   - pbeWithSHAAnd3-KeyTripleDES-CBC and pbeWithSHAAnd2-KeyTripleDES-CBC: Windows'
//     TripleDES-SHA1 export and openssl -descert;
//   - pbeWithSHAAnd128BitRC2-CBC and pbeWithSHAAnd40BitRC2-CBC: openssl 1.x's default and
//     openssl 3 -legacy;
//   - no encryption (openssl -certpbe NONE).
//
// BER input (indefinite lengths, segmented OCTET STRINGs, as NSS, Java and macOS write) is
// normalised to DER level by level, keeping the bytes the MAC covers. Key derivation is
// bounded per derivation and per file, so a hostile file costs seconds, not hours. Key bags
// (plain or shrouded) are skipped without being decrypted. Not supported, with a clear error: the
// public-key integrity and privacy modes (signedData, envelopedData), PBMAC1 (RFC 9579)
// MACs and RC4.
package pfx
