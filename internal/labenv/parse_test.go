package labenv

import (
	"maps"
	"testing"
)

func TestParseEnv(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr bool
	}{
		{name: "empty", in: "", want: map[string]string{}},
		{
			name: "lines",
			in:   "LAB_REALM=LAB.TEST\nLAB_SVC_DN=CN=svc_seg,CN=Users,DC=lab,DC=test\n\n# comment\nLAB_X=\n",
			want: map[string]string{"LAB_REALM": "LAB.TEST", "LAB_SVC_DN": "CN=svc_seg,CN=Users,DC=lab,DC=test", "LAB_X": ""},
		},
		{name: "no equals", in: "LAB_REALM\n", wantErr: true},
		{name: "empty key", in: "=x\n", wantErr: true},
		{name: "space in key", in: "LAB REALM=x\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEnv([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseEnv() error = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && !maps.Equal(got, tt.want) {
				t.Errorf("ParseEnv() = %v, want %v", got, tt.want)
			}
		})
	}
}

func FuzzParseEnv(f *testing.F) {
	f.Add([]byte("LAB_REALM=LAB.TEST\nLAB_KDC=127.0.0.5:88\n"))
	f.Add([]byte("=\n\n#x\nA=b=c"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseEnv(b)
		if err != nil {
			return
		}
		for k := range m {
			if k == "" {
				t.Fatalf("empty key from %q", b)
			}
		}
	})
}

func TestSeriesLess(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"4.17", "4.22", true},
		{"4.22", "4.17", false},
		{"4.9", "4.17", true},
		{"4.22", "4.22", false},
		{"4.22", "4.22.1", true},
		{"1.20", "4.17", true},
		{"", "4.17", true},
		{"x", "4.17", true},
	}
	for _, tt := range tests {
		if got := seriesLess(tt.a, tt.b); got != tt.want {
			t.Errorf("seriesLess(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
