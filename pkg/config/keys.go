package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/segmesh/segmesh/pkg/secret"
)

// AllRoles is what a key's roles tag "all" stands for.
var AllRoles = []string{"crl", "identity", "ticket", "edge"}

// Key declares one setting of config.json. The declaration is the field of
// the typed tree (Config and its sections, Gateway for the custom gateway
// settings) with its tags: json (or key) names it, the Go type is its type,
// Default() holds its default, secret.Secret marks a secret, roles says
// which roles read it and help says what it means. `run`, `config check`,
// `config init`, the README's tables (generated with keyDocs' text:
// READMETables, go generate ./pkg/config) and the secrets
// each process opens are fed from these declarations.
type Key struct {
	// Name is the JSON path (segmesh.identity.ldapPoolSize), kcd.domains[].domain
	// inside the list, or the dotted custom gateway key (cert.mapping.ldap.url).
	Name string
	// Type is the Go type: bool, int, string, []string, map[string]string,
	// secret.Secret.
	Type string
	// Default is Default()'s value, formatted as config check prints it; empty
	// when the zero value is the default.
	Default string
	// Secret reports a password or passcode (masked, encrypted at rest).
	Secret bool
	// Roles are the roles that read the setting.
	Roles []string
	// Help says what the setting means.
	Help string
	// Init is the value `config init` writes for a new site (an init tag),
	// a text/template over the site's names ({{.Domain}}, {{.DC}},
	// {{.Exchange}}, {{.Service}}, {{.DomainLower}}, {{.BaseDN}}); HasInit
	// is false for a key config init leaves to its default.
	Init string
	// HasInit reports an init tag (Init may be empty: written as "").
	HasInit bool
	// Fill tells the admin what to put in place of config init's value
	// (a fill tag); empty when the written value may stay.
	Fill string
	// Gateway reports a custom gateway setting (customGatewaySettings).
	Gateway bool
}

// Keys returns every declared setting, in the order of the typed tree.
func Keys() []Key {
	d := Default()
	var out []Key
	var walk func(t reflect.Type, v reflect.Value, prefix string)
	gateway := false
	walk = func(t reflect.Type, v reflect.Value, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if k := f.Tag.Get("key"); k != "" {
				name = k
			} else if name == "" || name == "-" {
				continue
			} else {
				name = prefix + name
			}
			var fv reflect.Value
			if v.IsValid() {
				fv = v.Field(i)
			}
			switch {
			case f.Type == secretType:
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type, fv, name+".")
				continue
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				walk(f.Type.Elem(), reflect.Value{}, name+"[].")
				continue
			case f.Tag.Get("help") == "":
				continue // CustomGatewaySettings: declared by Gateway's fields
			}
			roles := strings.Split(f.Tag.Get("roles"), ",")
			if f.Tag.Get("roles") == "all" {
				roles = AllRoles
			} else if f.Tag.Get("roles") == "" {
				roles = nil
			}
			init, hasInit := f.Tag.Lookup("init")
			out = append(out, Key{Name: name, Type: f.Type.String(), Default: format(fv), Secret: f.Type == secretType,
				Roles: roles, Help: f.Tag.Get("help"), Init: init, HasInit: hasInit, Fill: f.Tag.Get("fill"), Gateway: gateway})
		}
	}
	walk(reflect.TypeFor[Config](), reflect.ValueOf(d), "")
	gateway = true
	walk(reflect.TypeFor[Gateway](), reflect.ValueOf(d.Gateway), "")
	return out
}

// format renders a default value; the zero value renders as "".
func format(v reflect.Value) string {
	if !v.IsValid() || v.IsZero() {
		return ""
	}
	switch x := v.Interface().(type) {
	case bool:
		return strconv.FormatBool(x)
	case []string:
		return strings.Join(x, ",")
	case secret.Secret:
		return ""
	}
	return fmt.Sprint(v.Interface())
}
