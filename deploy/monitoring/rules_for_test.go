package monitoring_test

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"sigs.k8s.io/yaml"
)

// shortenedRules returns the rules file src with every rule's `for:` set to
// d and nothing else changed: the shipped expressions, labels and
// annotations, pending for d instead of minutes. The lab test
// (lab_test.go) loads them into a real Prometheus so that an injected fault
// fires its alert within seconds; TestShortenedRules shows that only `for:`
// differs. The file is read as a generic tree, so a field this code does not
// know (keep_firing_for, a group's interval) is carried over as it is.
func shortenedRules(src []byte, d time.Duration) ([]byte, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("rules file: %w", err)
	}
	groups, _ := doc["groups"].([]any)
	if len(groups) == 0 {
		return nil, errors.New("rules file: no groups")
	}
	n := 0
	for i, g := range groups {
		gm, ok := g.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("rules file: group %d is not a mapping", i)
		}
		rules, _ := gm["rules"].([]any)
		for j, r := range rules {
			rm, ok := r.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("rules file: group %v rule %d is not a mapping", gm["name"], j)
			}
			if _, ok := rm["alert"]; ok {
				rm["for"] = model.Duration(d).String()
				n++
			}
		}
	}
	if n == 0 {
		return nil, errors.New("rules file: no alerting rule")
	}
	return yaml.Marshal(doc)
}

// TestShortenedRules: the lab test's rules are alerts.yml's, rule for rule,
// with only `for:` shortened; broken input is refused.
func TestShortenedRules(t *testing.T) {
	src, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	out, err := shortenedRules(src, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var orig, short ruleGroups
	if err := yaml.UnmarshalStrict(src, &orig); err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(out, &short); err != nil {
		t.Fatalf("shortened rules: %v\n%s", err, out)
	}
	if len(orig.Groups) != len(short.Groups) {
		t.Fatalf("%d groups, want %d", len(short.Groups), len(orig.Groups))
	}
	n := 0
	for i, g := range orig.Groups {
		sg := short.Groups[i]
		if sg.Name != g.Name || len(sg.Rules) != len(g.Rules) {
			t.Fatalf("group %d: %s with %d rules, want %s with %d", i, sg.Name, len(sg.Rules), g.Name, len(g.Rules))
		}
		for j, r := range g.Rules {
			s := sg.Rules[j]
			if s.For != "2s" {
				t.Errorf("%s: for %q, want 2s", r.Alert, s.For)
			}
			if r.For == "2s" {
				t.Errorf("%s: alerts.yml already waits 2s; the lab test would not show it shortened", r.Alert)
			}
			s.For = r.For
			if !reflect.DeepEqual(r, s) {
				t.Errorf("%s differs beyond for:\n%+v\n%+v", r.Alert, r, s)
			}
			n++
		}
	}
	if n < 12 {
		t.Errorf("only %d rules compared", n)
	}
	for _, tc := range []struct{ name, src, want string }{
		{"not YAML", "groups: [", "rules file"},
		{"no groups", "rules: []\n", "no groups"},
		{"recording rules only", "groups:\n- name: r\n  rules:\n  - record: x\n    expr: up\n", "no alerting rule"},
		{"a rule that is a string", "groups:\n- name: r\n  rules:\n  - up\n", "is not a mapping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := shortenedRules([]byte(tc.src), time.Second); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one with %q", err, tc.want)
			}
		})
	}
}
