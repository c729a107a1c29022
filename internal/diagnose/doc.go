// Package diagnose runs every step of the request path (DESIGN.md, steps 1
// to 5) for one device certificate with the live configuration, in order,
// and says for the first step that fails what went wrong and how to fix it,
// in the words of SEG's documentation: parse the certificate; chain and
// trust; revocation (the configured CRL distribution points, fetched now);
// mapping (which source gave the UPN, and its realm); the service account's
// TGT; S4U2Self; S4U2Proxy; and an OPTIONS request to Exchange's
// /Microsoft-Server-ActiveSync with the Negotiate header the edge would send.
//
// The steps are a table (name, title, what it needs, run, fix), so the CLI
// (`segmesh diagnose`), the status page and tests share one engine. A Report
// carries no secret: no password, session key, ticket or Authorization
// header appears in it.
package diagnose
