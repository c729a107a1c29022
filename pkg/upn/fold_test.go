package upn

import (
	"strings"
	"testing"
)

func TestFoldASCII(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"alice@lab.test", "alice@lab.test"},
		{"Alice@LAB.Test", "alice@lab.test"},
		{"mar\u212a@corp.example", "mar\u212a@corp.example"}, // Kelvin sign stays: not mark@corp.example
		{"AL\u0130CE@lab.test", "al\u0130ce@lab.test"},       // dotted capital I stays: not alice@lab.test
		{"ÄLICE@lab.test", "Älice@lab.test"},
	}
	for _, tt := range tests {
		if got := FoldASCII(tt.in); got != tt.want {
			t.Errorf("FoldASCII(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzFoldASCII(f *testing.F) {
	f.Add("Mar\u212a@Corp")
	f.Fuzz(func(t *testing.T, s string) {
		got := FoldASCII(s)
		if len(got) != len(s) || FoldASCII(got) != got || !strings.EqualFold(got, s) && isASCII(s) {
			t.Fatalf("FoldASCII(%q) = %q", s, got)
		}
		for i := range len(s) {
			if s[i] >= 0x80 && got[i] != s[i] {
				t.Fatalf("FoldASCII(%q) changed a non-ASCII byte: %q", s, got)
			}
		}
	})
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
