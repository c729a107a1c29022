package edge

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// EASRequest is what the edge reads from an Exchange ActiveSync request URI
// for its logs and metrics. Nothing in it is trusted: the user is the one the
// certificate maps to, never the User parameter.
type EASRequest struct {
	// Cmd is the command (Sync, Ping, FolderSync, ...); empty when absent.
	Cmd string
	// User is the User parameter as the device wrote it; empty when absent.
	User string
	// DeviceID is the DeviceId parameter; empty when absent.
	DeviceID string
	// DeviceType is the DeviceType parameter; empty when absent.
	DeviceType string
	// ProtocolVersion is the protocol version of the base64 form (for example
	// "14.1"); empty for the plain form, which carries it in a header.
	ProtocolVersion string
	// Base64 reports whether the query was in the base64-encoded form.
	Base64 bool
}

// ErrEASQuery is returned (wrapped) for a query that is neither a plain nor a
// well-formed base64-encoded MS-ASHTTP query value.
var ErrEASQuery = errors.New("edge: malformed ActiveSync query")

// maxEASField bounds the strings kept from a query, so a hostile query cannot
// blow up a log line.
const maxEASField = 128

// easCommands maps the MS-ASHTTP 2.2.1.1.1.1.2 command codes to names.
var easCommands = [...]string{
	0: "Sync", 1: "SendMail", 2: "SmartForward", 3: "SmartReply", 4: "GetAttachment",
	9: "FolderSync", 10: "FolderCreate", 11: "FolderDelete", 12: "FolderUpdate",
	13: "MoveItems", 14: "GetItemEstimate", 15: "MeetingResponse", 16: "Search",
	17: "Settings", 18: "Ping", 19: "ItemOperations", 20: "Provision",
	21: "ResolveRecipients", 22: "ValidateCert",
}

// easParamUser is the command-parameter tag of User (MS-ASHTTP 2.2.1.1.1.1.3).
const easParamUser = 8

// ParseEASQuery reads Cmd, User, DeviceId and DeviceType from an ActiveSync
// request's raw query, in either form MS-ASHTTP allows: the plain text form
// (Cmd=Sync&User=bob&DeviceId=...&DeviceType=...) or the base64-encoded form
// (section 2.2.1.1.1.1), a binary structure encoded as one base64 value. An
// empty query gives the zero EASRequest (OPTIONS carries none).
func ParseEASQuery(rawQuery string) (EASRequest, error) {
	if rawQuery == "" {
		return EASRequest{}, nil
	}
	if strings.ContainsAny(rawQuery, "=&") && !looksBase64(rawQuery) {
		return parsePlainEAS(rawQuery)
	}
	return parseBase64EAS(rawQuery)
}

// looksBase64 reports whether q is a base64 value that merely ends in '='
// padding (the base64 form may), rather than a plain key=value query.
func looksBase64(q string) bool {
	if strings.Contains(q, "&") {
		return false
	}
	i := strings.IndexByte(q, '=')
	return i >= 0 && strings.TrimRight(q[i:], "=") == ""
}

func parsePlainEAS(q string) (EASRequest, error) {
	var r EASRequest
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(kv, "=")
		var err error
		if v, err = url.QueryUnescape(v); err != nil {
			return EASRequest{}, fmt.Errorf("%w: parameter %.32q: %w", ErrEASQuery, k, err)
		}
		switch {
		case strings.EqualFold(k, "Cmd"):
			r.Cmd = clip(v)
		case strings.EqualFold(k, "User"):
			r.User = clip(v)
		case strings.EqualFold(k, "DeviceId"):
			r.DeviceID = clip(v)
		case strings.EqualFold(k, "DeviceType"):
			r.DeviceType = clip(v)
		}
	}
	return r, nil
}

func parseBase64EAS(q string) (EASRequest, error) {
	s, err := url.QueryUnescape(q)
	if err != nil {
		return EASRequest{}, fmt.Errorf("%w: %w", ErrEASQuery, err)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		// Some clients drop the padding.
		if b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "=")); err != nil {
			return EASRequest{}, fmt.Errorf("%w: not base64", ErrEASQuery)
		}
	}
	r := EASRequest{Base64: true}
	p := easReader{b: b}
	ver := p.byte()
	cmd := p.byte()
	_ = p.bytes(2) // locale (LCID, little-endian)
	dev := p.bytes(int(p.byte()))
	n := int(p.byte())
	if n != 0 && n != 4 {
		return EASRequest{}, fmt.Errorf("%w: policy key length %d, want 0 or 4", ErrEASQuery, n)
	}
	_ = p.bytes(n) // policy key
	typ := p.bytes(int(p.byte()))
	if p.short {
		return EASRequest{}, fmt.Errorf("%w: truncated header (%d bytes)", ErrEASQuery, len(b))
	}
	r.ProtocolVersion = strconv.Itoa(int(ver)/10) + "." + strconv.Itoa(int(ver)%10)
	if int(cmd) < len(easCommands) && easCommands[cmd] != "" {
		r.Cmd = easCommands[cmd]
	} else {
		r.Cmd = "Unknown(" + strconv.Itoa(int(cmd)) + ")"
	}
	r.DeviceID = printable(dev)
	r.DeviceType = printable(typ)
	for len(p.b) > 0 {
		tag := p.byte()
		val := p.bytes(int(p.byte()))
		if p.short {
			return EASRequest{}, fmt.Errorf("%w: truncated command parameter %d", ErrEASQuery, tag)
		}
		if tag == easParamUser {
			r.User = printable(val)
		}
	}
	return r, nil
}

// easReader reads the base64 form's fields; reading past the end sets short.
type easReader struct {
	b     []byte
	short bool
}

func (p *easReader) byte() byte {
	if len(p.b) < 1 {
		p.short = true
		return 0
	}
	c := p.b[0]
	p.b = p.b[1:]
	return c
}

func (p *easReader) bytes(n int) []byte {
	if len(p.b) < n {
		p.short = true
		p.b = nil
		return nil
	}
	v := p.b[:n]
	p.b = p.b[n:]
	return v
}

// printable returns b as a string when it is printable UTF-8 (device IDs and
// types are in practice ASCII), else in hexadecimal (early clients sent a
// binary GUID), clipped either way.
func printable(b []byte) string {
	if utf8.Valid(b) && !strings.ContainsFunc(string(b), func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return clip(string(b))
	}
	return clip(hex.EncodeToString(b))
}

func clip(s string) string {
	if len(s) <= maxEASField {
		return s
	}
	s = s[:maxEASField]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
