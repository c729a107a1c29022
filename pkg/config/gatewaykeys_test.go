package config

import (
	"reflect"
	"strings"
	"testing"
)

// TestEveryGatewayDeclarationParses: each Gateway field with a key tag is a
// custom gateway key parseGateway knows, and a value written in
// customGatewaySettings lands in that field. A declaration of a type the
// parse table cannot derive fails here, not at an admin's site.
func TestEveryGatewayDeclarationParses(t *testing.T) {
	typ := reflect.TypeFor[Gateway]()
	declared := 0
	for i := range typ.NumField() {
		f := typ.Field(i)
		key := f.Tag.Get("key")
		if key == "" {
			continue
		}
		declared++
		if _, ok := gatewayKeys[key]; !ok {
			t.Errorf("%s (Gateway.%s, %s) has no parse entry: give it a type gatewayFields derives (bool, int, string, []string)", key, f.Name, f.Type)
			continue
		}
		var raw any
		var want any
		switch f.Type.Kind() {
		case reflect.Bool:
			raw, want = "true", true
		case reflect.Int:
			raw, want = "7", 7
		case reflect.String:
			raw, want = " text ", "text"
		case reflect.Slice:
			raw, want = "http://a.example/x.crl, http://b.example/y.crl", []string{"http://a.example/x.crl", "http://b.example/y.crl"}
		}
		var g Gateway
		var r Report
		parseGateway(map[string]any{key: raw}, &g, &r)
		if len(r.Problems) != 0 {
			t.Errorf("%s = %v: %v", key, raw, r.Problems)
		}
		if got := reflect.ValueOf(g).Field(i).Interface(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %v set Gateway.%s to %#v, want %#v", key, raw, f.Name, got, want)
		}
		// Values (config check's effective view) reads it back.
		back, ok := g.Values()[key]
		if l, isList := want.([]string); isList {
			want = strings.Join(l, ",")
		}
		if !ok || !reflect.DeepEqual(back, want) {
			t.Errorf("Values()[%s] = %#v, want %#v", key, back, want)
		}
	}
	if declared != len(gatewayKeys) || declared < 8 {
		t.Errorf("%d declared gateway keys, %d parse entries", declared, len(gatewayKeys))
	}
}
