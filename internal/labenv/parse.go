package labenv

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// ParseEnv parses `lab.sh env` output: KEY=VALUE lines, values unquoted.
func ParseEnv(b []byte) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("lab.sh env: line %d is not KEY=VALUE", n)
		}
		out[k] = v
	}
	return out, sc.Err()
}
