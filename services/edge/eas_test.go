package edge

import (
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"testing"
)

// easB64 builds a base64-form query value (MS-ASHTTP 2.2.1.1.1.1).
func easB64(ver, cmd byte, dev string, policy []byte, typ string, params ...[]byte) []byte {
	b := []byte{ver, cmd, 0x09, 0x04, byte(len(dev))}
	b = append(b, dev...)
	b = append(b, byte(len(policy)))
	b = append(b, policy...)
	b = append(b, byte(len(typ)))
	b = append(b, typ...)
	for _, p := range params {
		b = append(b, p...)
	}
	return b
}

func param(tag byte, v string) []byte { return append([]byte{tag, byte(len(v))}, v...) }

func TestParseEASQuery(t *testing.T) {
	full := base64.StdEncoding.EncodeToString(easB64(141, 18, "ABCDEF0123", []byte{1, 2, 3, 4}, "iPhone", param(1, "5"), param(8, "bob.smith")))
	tests := []struct {
		name  string
		query string
		want  EASRequest
		err   bool
	}{
		{name: "empty (OPTIONS)", query: "", want: EASRequest{}},
		{name: "plain", query: "Cmd=Sync&User=alice&DeviceId=DEV1&DeviceType=iPhone",
			want: EASRequest{Cmd: "Sync", User: "alice", DeviceID: "DEV1", DeviceType: "iPhone"}},
		{name: "plain, any case and escapes", query: "cmd=FolderSync&user=LAB%5Calice&deviceid=A%20B&devicetype=Android",
			want: EASRequest{Cmd: "FolderSync", User: `LAB\alice`, DeviceID: "A B", DeviceType: "Android"}},
		{name: "plain, extra parameters", query: "Cmd=SmartReply&ItemId=5:1&CollectionId=7&SaveInSent=T&User=u&DeviceId=d&DeviceType=t",
			want: EASRequest{Cmd: "SmartReply", User: "u", DeviceID: "d", DeviceType: "t"}},
		{name: "plain, bad escape", query: "Cmd=Sync&User=%zz", err: true},
		{name: "MS-ASHTTP example", query: "jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l",
			want: EASRequest{Cmd: "Sync", DeviceID: "v140Device", DeviceType: "SmartPhone", ProtocolVersion: "14.0", Base64: true}},
		{name: "base64 with policy key and parameters", query: full,
			want: EASRequest{Cmd: "Ping", User: "bob.smith", DeviceID: "ABCDEF0123", DeviceType: "iPhone", ProtocolVersion: "14.1", Base64: true}},
		{name: "base64 URL-escaped", query: url.QueryEscape(full),
			want: EASRequest{Cmd: "Ping", User: "bob.smith", DeviceID: "ABCDEF0123", DeviceType: "iPhone", ProtocolVersion: "14.1", Base64: true}},
		{name: "base64 without padding", query: strings.TrimRight(base64.StdEncoding.EncodeToString(easB64(161, 9, "D", nil, "T")), "="),
			want: EASRequest{Cmd: "FolderSync", DeviceID: "D", DeviceType: "T", ProtocolVersion: "16.1", Base64: true}},
		{name: "base64 binary device id", query: base64.StdEncoding.EncodeToString(easB64(121, 20, "\x00\x01\xff", nil, "PocketPC")),
			want: EASRequest{Cmd: "Provision", DeviceID: "0001ff", DeviceType: "PocketPC", ProtocolVersion: "12.1", Base64: true}},
		{name: "base64 unknown command", query: base64.StdEncoding.EncodeToString(easB64(141, 99, "D", nil, "T")),
			want: EASRequest{Cmd: "Unknown(99)", DeviceID: "D", DeviceType: "T", ProtocolVersion: "14.1", Base64: true}},
		{name: "base64 truncated header", query: base64.StdEncoding.EncodeToString(easB64(141, 0, "DEVICE", nil, "T")[:7]), err: true},
		{name: "base64 truncated parameter", query: base64.StdEncoding.EncodeToString(append(easB64(141, 0, "D", nil, "T"), 8, 10, 'a')), err: true},
		{name: "base64 bad policy key length", query: base64.StdEncoding.EncodeToString(easB64(141, 0, "D", []byte{1, 2}, "T")), err: true},
		{name: "not base64", query: "!!!", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEASQuery(tt.query)
			if tt.err {
				if err == nil || !errors.Is(err, ErrEASQuery) {
					t.Fatalf("err = %v, want ErrEASQuery", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseEASQueryClipsLongFields(t *testing.T) {
	got, err := ParseEASQuery("Cmd=Sync&DeviceId=" + strings.Repeat("é", 200))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.DeviceID) > maxEASField || !strings.HasPrefix(got.DeviceID, "éé") {
		t.Fatalf("DeviceId not clipped to valid UTF-8 within %d bytes: %d", maxEASField, len(got.DeviceID))
	}
}

func FuzzParseEASQuery(f *testing.F) {
	f.Add("Cmd=Sync&User=alice&DeviceId=DEV1&DeviceType=iPhone")
	f.Add("jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l")
	f.Add(base64.StdEncoding.EncodeToString(easB64(141, 18, "ABCDEF0123", []byte{1, 2, 3, 4}, "iPhone", param(8, "bob"))))
	f.Add("%zz")
	f.Add("=")
	f.Fuzz(func(t *testing.T, q string) {
		r, err := ParseEASQuery(q)
		if err != nil {
			if !errors.Is(err, ErrEASQuery) {
				t.Fatalf("error %v is not ErrEASQuery", err)
			}
			return
		}
		for _, s := range []string{r.Cmd, r.User, r.DeviceID, r.DeviceType} {
			if len(s) > maxEASField+16 {
				t.Fatalf("field of %d bytes", len(s))
			}
		}
	})
}
