// Package store keeps the last good CRL of every distribution point on disk
// for the crl role, so that a restart while a distribution point is down
// still enforces revocation (SEG cannot). Each URL gets two files in one
// directory, named by the SHA-256 of the URL: <name>.crl (the DER as
// verified) and <name>.json (URL, HTTP validators, fetch time, the DER's
// SHA-256). The subdirectory kept/ holds, the same way, the CRLs kept in
// force per issuer and partition after their distribution point went on
// to give a CRL of another issuer or partition (SaveKept), named by the
// SHA-256 of issuer key and partition: without them a restart would forget
// the newest CRL of that partition and put an older one in force; the
// records of URLs no longer configured (Orphans) are read at the start
// too, as the floor of their partitions. Every
// file is written atomically (temporary file, fsync, rename, directory
// fsync). The store does not verify: the caller re-verifies what it loads.
package store
