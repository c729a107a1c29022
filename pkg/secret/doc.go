// Package secret holds the Secret type: a string that redacts itself
// everywhere it could be printed (fmt verbs, JSON, slog), so a password,
// passcode or key that reaches a log line or an error shows as a mask.
// It serves every step of the request path that touches a credential.
package secret
