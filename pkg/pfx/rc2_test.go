package pfx

import (
	"bytes"
	"testing"
)

// TestRC2Vectors checks the cipher against the test vectors of RFC 2268 section 5.
func TestRC2Vectors(t *testing.T) {
	tests := []struct {
		key, plain, cipher string
		t1                 int
	}{
		{"0000000000000000", "0000000000000000", "ebb773f993278eff", 63},
		{"ffffffffffffffff", "ffffffffffffffff", "278b27e42e2f0d49", 64},
		{"3000000000000000", "1000000000000001", "30649edf9be7d2c2", 64},
		{"88", "0000000000000000", "61a8a244adacccf0", 64},
		{"88bca90e90875a", "0000000000000000", "6ccf4308974c267f", 64},
		{"88bca90e90875a7f0f79c384627bafb2", "0000000000000000", "1a807d272bbe5db1", 64},
		{"88bca90e90875a7f0f79c384627bafb2", "0000000000000000", "2269552ab0f85ca6", 128},
		{"88bca90e90875a7f0f79c384627bafb216f80a6f85920584c42fceb0be255daf1e", "0000000000000000", "5b78d3a43dfff1f1", 129},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			c, err := newRC2(unhex(t, tt.key), tt.t1)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 8)
			c.Encrypt(got, unhex(t, tt.plain))
			if !bytes.Equal(got, unhex(t, tt.cipher)) {
				t.Fatalf("Encrypt = %x, want %s", got, tt.cipher)
			}
			c.Decrypt(got, unhex(t, tt.cipher))
			if !bytes.Equal(got, unhex(t, tt.plain)) {
				t.Fatalf("Decrypt = %x, want %s", got, tt.plain)
			}
		})
	}
}

func TestRC2BadKey(t *testing.T) {
	for _, n := range []int{0, 129} {
		if _, err := newRC2(make([]byte, n), 64); err == nil {
			t.Errorf("newRC2 with a %d-byte key succeeded", n)
		}
	}
}
