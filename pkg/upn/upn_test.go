package upn

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in         string
		user, suff string
		wantErr    bool
	}{
		{in: "alice@lab.test", user: "alice", suff: "lab.test"},
		{in: "Bob.Smith@LAB.TEST", user: "Bob.Smith", suff: "LAB.TEST"},
		{in: "zoë@corp.example", user: "zoë", suff: "corp.example"},
		{in: "a@b", user: "a", suff: "b"},
		{in: "", wantErr: true},
		{in: "alice", wantErr: true},
		{in: "@lab.test", wantErr: true},
		{in: "alice@", wantErr: true},
		{in: "a@b@lab.test", wantErr: true},
		{in: "alice@lab..test", wantErr: true},
		{in: "alice@.lab.test", wantErr: true},
		{in: "alice@lab.test.", wantErr: true},
		{in: " alice@lab.test", wantErr: true},
		{in: "alice @lab.test", wantErr: true},
		{in: "alice@lab test", wantErr: true},
		{in: "al\x00ice@lab.test", wantErr: true},
		{in: "alice@lab.test\n", wantErr: true},
		{in: "al\xffice@lab.test", wantErr: true},
		{in: strings.Repeat("a", MaxLen) + "@lab.test", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.wantErr {
				var se *SyntaxError
				if !errors.As(err, &se) {
					t.Fatalf("Parse(%q) = %+v, %v; want SyntaxError", tt.in, got, err)
				}
				return
			}
			if err != nil || got.User != tt.user || got.Suffix != tt.suff || got.Realm != "" {
				t.Fatalf("Parse(%q) = %+v, %v; want %s / %s", tt.in, got, err, tt.user, tt.suff)
			}
			if got.String() != tt.in {
				t.Errorf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}

func TestRealmsResolve(t *testing.T) {
	r, err := NewRealms([]string{"LAB.TEST", "child.lab.test"}, map[string]string{"example.com": "lab.test"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in        string
		realm     string
		unknown   string
		wantSynEr bool
	}{
		{in: "alice@lab.test", realm: "LAB.TEST"},
		{in: "alice@LAB.Test", realm: "LAB.TEST"},
		{in: "bob@child.lab.test", realm: "CHILD.LAB.TEST"},
		{in: "carol@example.com", realm: "LAB.TEST"},
		{in: "carol@EXAMPLE.COM", realm: "LAB.TEST"},
		{in: "dave@other.test", unknown: "other.test"},
		{in: "dave@sub.lab.test", unknown: "sub.lab.test"},
		{in: "dave@test", unknown: "test"},
		{in: "carol@exampl\u0130.com", unknown: "exampl\u0130.com"}, // U+0130 lower-cases to i only under Unicode mapping
		{in: "nope", wantSynEr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := r.Resolve(tt.in)
			switch {
			case tt.wantSynEr:
				var se *SyntaxError
				if !errors.As(err, &se) {
					t.Fatalf("Resolve(%q) = %+v, %v; want SyntaxError", tt.in, got, err)
				}
			case tt.unknown != "":
				// Not refused: the primary realm's KDC resolves the
				// enterprise name (issue 23 item 1).
				if err != nil || got.Realm != "LAB.TEST" || !got.SuffixUnmapped || got.Suffix != tt.unknown {
					t.Fatalf("Resolve(%q) = %+v, %v; want the primary realm LAB.TEST, SuffixUnmapped", tt.in, got, err)
				}
			default:
				if err != nil || got.Realm != tt.realm || got.String() != tt.in {
					t.Fatalf("Resolve(%q) = %+v, %v; want realm %s", tt.in, got, err, tt.realm)
				}
			}
		})
	}
}

func TestNewRealmsRefuses(t *testing.T) {
	tests := []struct {
		name     string
		domains  []string
		suffixes map[string]string
		want     string
	}{
		{"no domain", nil, nil, "no domain"},
		{"bad domain", []string{"lab..test"}, nil, "not a DNS domain"},
		{"twice", []string{"LAB.TEST", "lab.test"}, nil, "configured twice"},
		{"suffix to unknown realm", []string{"LAB.TEST"}, map[string]string{"example.com": "OTHER.TEST"}, "not a configured domain"},
		{"bad suffix", []string{"LAB.TEST"}, map[string]string{"exa mple.com": "LAB.TEST"}, "not a DNS domain"},
		{"suffix is another domain", []string{"LAB.TEST", "CHILD.LAB.TEST"}, map[string]string{"child.lab.test": "LAB.TEST"}, "is the domain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewRealms(tt.domains, tt.suffixes)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewRealms() error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func FuzzParseUPN(f *testing.F) {
	for _, s := range []string{"alice@lab.test", "a@b@c", "@", "x@.y", "zoë@lab.test", "\x00@a"} {
		f.Add(s)
	}
	r, err := NewRealms([]string{"LAB.TEST"}, map[string]string{"example.com": "LAB.TEST"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := Parse(s)
		if err != nil {
			return
		}
		if u.String() != s || strings.Contains(u.User, "@") || u.User == "" || u.Suffix == "" {
			t.Fatalf("Parse(%q) = %+v", s, u)
		}
		ru, err := r.Resolve(s)
		if err == nil && ru.Realm != "LAB.TEST" {
			t.Fatalf("Resolve(%q) realm = %q", s, ru.Realm)
		}
	})
}
