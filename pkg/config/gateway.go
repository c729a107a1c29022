package config

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/segmesh/segmesh/pkg/certmap"
)

// Custom gateway setting keys, as SEG spells them.
const (
	KeyCertMappingEnabled      = "cert.mapping.enabled"
	KeyCertMappingLDAPURL      = certmap.KeyURL
	KeyCertMappingLDAPUser     = certmap.KeyBindDN
	KeyCertMappingLDAPBaseDN   = certmap.KeyBaseDN
	KeyRevocationEnabled       = "enable.cert.revocation.validation"
	KeyCRLFetchIntervalMinutes = "remote.crl.fetch.interval.in.minutes"
	KeyCRLURIs                 = "remote.crl.distribution.http.uris"
	KeyFailHardOnCRLDownload   = "fail.hard.on.crl.download.failure.during.server.startup"
)

type gatewayKind int

const (
	kindBool gatewayKind = iota
	kindString
	kindPositiveInt
)

// gatewayField is how parseGateway sets one custom gateway key: derived
// from the Gateway field that declares it (its key tag), so a declared key
// cannot lack a parse entry.
type gatewayField struct {
	kind  gatewayKind
	index int  // of the field in Gateway
	list  bool // a []string, written as a comma-separated list of URLs
}

// gatewayKeys maps every custom gateway key segmesh knows to its field.
var gatewayKeys = gatewayFields()

// gatewayFields reads Gateway's declarations: a bool is a boolean, an int a
// positive whole number, a string a string and a []string a comma-separated
// URL list. A field of another type is left out, which
// TestEveryGatewayDeclarationParses refuses.
func gatewayFields() map[string]gatewayField {
	t := reflect.TypeFor[Gateway]()
	out := map[string]gatewayField{}
	for i := range t.NumField() {
		f := t.Field(i)
		k := f.Tag.Get("key")
		if k == "" {
			continue
		}
		switch {
		case f.Type.Kind() == reflect.Bool:
			out[k] = gatewayField{kind: kindBool, index: i}
		case f.Type.Kind() == reflect.Int:
			out[k] = gatewayField{kind: kindPositiveInt, index: i}
		case f.Type.Kind() == reflect.String:
			out[k] = gatewayField{kind: kindString, index: i}
		case f.Type == reflect.TypeFor[[]string]():
			out[k] = gatewayField{kind: kindString, index: i, list: true}
		}
	}
	return out
}

// set stores a parsed value in g's field.
func (gf gatewayField) set(g *Gateway, b bool, s string, n int) {
	v := reflect.ValueOf(g).Elem().Field(gf.index)
	switch {
	case gf.kind == kindBool:
		v.SetBool(b)
	case gf.kind == kindPositiveInt:
		v.SetInt(int64(n))
	case gf.list:
		v.Set(reflect.ValueOf(splitURLList(s)))
	default:
		v.SetString(s)
	}
}

// Values returns every custom gateway setting's value by key, read through
// the declarations (a URL list joined with commas), for views such as config
// check's effective configuration.
func (g Gateway) Values() map[string]any {
	v := reflect.ValueOf(g)
	out := make(map[string]any, len(gatewayKeys))
	for k, f := range gatewayKeys {
		fv := v.Field(f.index)
		if f.list {
			out[k] = strings.Join(fv.Interface().([]string), ",")
			continue
		}
		out[k] = fv.Interface()
	}
	return out
}

// GatewayKeys returns the known custom gateway keys, sorted.
func GatewayKeys() []string {
	keys := make([]string, 0, len(gatewayKeys))
	for k := range gatewayKeys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// SplitList splits a comma-separated SEG list, trimming spaces and dropping
// empty items.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// splitURLList splits a comma-separated list of URLs like SplitList, except
// that an item that does not start with a scheme continues the one before:
// AD CS's default LDAP CDP (ldap:///CN=CA,CN=CDP,...,DC=corp?...) is one
// URL with commas in it, and one problem, not one per DN part. Only an LDAP
// URL is continued: a scheme-less item after an http URL is its own (bad)
// item, never glued on as a comma in the http URL's path.
func splitURLList(s string) []string {
	var out []string
	for _, p := range SplitList(s) {
		if len(out) > 0 && !strings.Contains(p, "://") && isLDAPURL(out[len(out)-1]) {
			out[len(out)-1] += "," + p
			continue
		}
		out = append(out, p)
	}
	return out
}

// isLDAPURL reports whether u starts with ldap: or ldaps: (any case).
func isLDAPURL(u string) bool {
	l := strings.ToLower(u)
	return strings.HasPrefix(l, "ldap:") || strings.HasPrefix(l, "ldaps:")
}

// parseGateway fills g from the raw settings (values may be JSON strings,
// booleans or numbers, as the console writes either), reporting every
// unknown key and bad value.
func parseGateway(raw map[string]any, g *Gateway, r *Report) {
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := raw[k]
		spec, ok := gatewayKeys[k]
		if !ok {
			fix := "remove it, or use one of: " + strings.Join(GatewayKeys(), ", ")
			if s := nearest(k, GatewayKeys()); s != "" {
				fix = fmt.Sprintf("did you mean %q?", s)
			}
			r.add(SeverityError, k, "", "unknown custom gateway setting", fix)
			continue
		}
		text := fmt.Sprint(v)
		switch spec.kind {
		case kindBool:
			var b bool
			switch x := v.(type) {
			case bool:
				b = x
			case string:
				pb, err := strconv.ParseBool(strings.TrimSpace(x))
				if err != nil {
					r.add(SeverityError, k, x, "not a boolean", `write true or false`)
					continue
				}
				b = pb
			default:
				r.add(SeverityError, k, text, "not a boolean", `write true or false`)
				continue
			}
			spec.set(g, b, "", 0)
		case kindString:
			s, ok := v.(string)
			if !ok {
				r.add(SeverityError, k, text, "not a string", "quote the value")
				continue
			}
			spec.set(g, false, strings.TrimSpace(s), 0)
		case kindPositiveInt:
			var n int
			switch x := v.(type) {
			case float64:
				if x != float64(int(x)) {
					r.add(SeverityError, k, text, "not a whole number of minutes", "write a whole number such as 1440")
					continue
				}
				n = int(x)
			case string:
				pn, err := strconv.Atoi(strings.TrimSpace(x))
				if err != nil {
					r.add(SeverityError, k, x, "not a whole number of minutes", "write a whole number such as 1440")
					continue
				}
				n = pn
			default:
				r.add(SeverityError, k, text, "not a whole number of minutes", "write a whole number such as 1440")
				continue
			}
			if n <= 0 {
				r.add(SeverityError, k, text, "the interval must be at least 1 minute", "write a positive number of minutes (SEG's default is 1440, one day)")
				continue
			}
			spec.set(g, false, "", n)
		}
	}
}
