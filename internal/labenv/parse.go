package labenv

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
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

// seriesLess reports whether release series a ("4.17") is older than b
// ("4.22"), comparing numerically part by part; a part that is not a number
// compares as 0.
func seriesLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		x, y := part(as, i), part(bs, i)
		if x != y {
			return x < y
		}
	}
	return false
}

func part(p []string, i int) int {
	if i >= len(p) {
		return 0
	}
	n, err := strconv.Atoi(p[i])
	if err != nil {
		return 0
	}
	return n
}
