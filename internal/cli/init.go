package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"text/template"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/krbhint"
)

// siteValues are what `config init` asks for; the rest of the file follows.
type siteValues struct {
	Domain, DomainLower, DC, Exchange, Service, BaseDN string
}

// initFile builds the starting config.json from the declarations: every key
// with an init tag, in the order of the typed tree, its value the tag's
// template filled with the site's names and typed as the key is. A key
// declared with an init tag is written without any change here.
func initFile(v siteValues) ([]byte, error) {
	root := &object{}
	var domain *object
	for _, k := range config.Keys() {
		if !k.HasInit {
			continue
		}
		text, err := fillTemplate(k.Name, k.Init, v)
		if err != nil {
			return nil, err
		}
		if k.Gateway { // SEG writes every custom gateway value as a string
			root.child("customGatewaySettings").set(k.Name, text)
			continue
		}
		val, err := typed(k, text)
		if err != nil {
			return nil, err
		}
		parent, name := root, k.Name
		if list, field, ok := strings.Cut(k.Name, "[]."); ok {
			// kcd.domains[].domain: one entry of the list.
			if domain == nil {
				domain = &object{}
				p := root.path(list[:strings.LastIndex(list, ".")+1])
				p.set(list[strings.LastIndex(list, ".")+1:], []any{domain})
			}
			parent, name = domain, field
		} else if i := strings.LastIndex(name, "."); i >= 0 {
			parent, name = root.path(name[:i+1]), name[i+1:]
		}
		parent.set(name, val)
	}
	b, err := json.MarshalIndent(root, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// fillTemplate fills an init tag with the site's names.
func fillTemplate(key, text string, v siteValues) (string, error) {
	t, err := template.New(key).Parse(text)
	if err != nil {
		return "", fmt.Errorf("config init: the init tag of %s: %w", key, err)
	}
	var b strings.Builder
	if err := t.Execute(&b, v); err != nil {
		return "", fmt.Errorf("config init: the init tag of %s: %w", key, err)
	}
	return b.String(), nil
}

// typed turns an init value into the key's JSON type.
func typed(k config.Key, text string) (any, error) {
	switch k.Type {
	case "bool":
		b, err := strconv.ParseBool(text)
		if err != nil {
			return nil, fmt.Errorf("config init: the init tag of %s is not a boolean: %w", k.Name, err)
		}
		return b, nil
	case "int":
		n, err := strconv.Atoi(text)
		if err != nil {
			return nil, fmt.Errorf("config init: the init tag of %s is not a number: %w", k.Name, err)
		}
		return n, nil
	case "[]string":
		return config.SplitList(text), nil
	}
	return text, nil
}

// object is a JSON object that keeps its keys in the order they were set.
type object struct {
	keys []string
	vals map[string]any
}

func (o *object) set(k string, v any) {
	if o.vals == nil {
		o.vals = map[string]any{}
	}
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

// child returns the object under k, adding it.
func (o *object) child(k string) *object {
	if c, ok := o.vals[k].(*object); ok {
		return c
	}
	c := &object{}
	o.set(k, c)
	return c
}

// path returns the object under a dotted prefix such as "segmesh.edge.".
func (o *object) path(prefix string) *object {
	for _, part := range strings.Split(strings.TrimSuffix(prefix, "."), ".") {
		if part != "" {
			o = o.child(part)
		}
	}
	return o
}

// MarshalJSON writes the keys in order.
func (o *object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		vb, err := json.Marshal(o.vals[k])
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// initNotes builds config.json.md from the declarations: what to fill in
// (fill tags), what was written for the site (init tags, with each key's
// help) and every other key with the default in force.
func initNotes(v siteValues, file string) (string, error) {
	cell := func(s string) string { return strings.ReplaceAll(s, "|", "\\|") }
	var must, written, rest strings.Builder
	for _, k := range config.Keys() {
		if k.Fill != "" {
			fmt.Fprintf(&must, "| `%s` | %s |\n", k.Name, cell(k.Fill))
		}
		if !k.HasInit {
			def := k.Default
			if def == "" {
				def = "(none)"
			}
			fmt.Fprintf(&rest, "| `%s` | %s | %s | %s |\n", k.Name, cell(def), strings.Join(k.Roles, ", "), cell(k.Help))
			continue
		}
		val, err := fillTemplate(k.Name, k.Init, v)
		if err != nil {
			return "", err
		}
		if val == "" {
			val = "empty"
		} else {
			val = "`" + cell(val) + "`"
		}
		fmt.Fprintf(&written, "| `%s` | %s | %s |\n", k.Name, val, cell(k.Help))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# %s: what to fill in\n\n", file)
	fmt.Fprintf(&b, "Written by `segmesh config init` for the domain %s. JSON has no comments, so they are here.\n", v.Domain)
	fmt.Fprintf(&b, "Check the file with `segmesh config check %s`, then one user with\n`segmesh diagnose --config %s --cert user.pem`.\n\n", file, file)
	b.WriteString("## Must fill in\n\n| key | what |\n| --- | --- |\n" + must.String() + "\n")
	b.WriteString("## Written for your site\n\n| key | value written | what it is |\n| --- | --- | --- |\n" + written.String() + "\n")
	b.WriteString("## Every other setting: the default is in force\n\n| key | default | read by | what it is |\n| --- | --- | --- | --- |\n" + rest.String() + "\n")
	b.WriteString("## If users see \"Client not found in kerberos database\"\n\n")
	b.WriteString(krbhint.Fix(krbhint.StageS4U2Self, errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN) + ".\n")
	return b.String(), nil
}

// configInit writes a starting config.json for a new site and its
// explanation beside it. It refuses to overwrite either file, and checks
// the result with the loader `run` uses before writing anything.
func configInit(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("config init", "config init [--domain CORP.EXAMPLE] [--dc dc1.corp.example] [--exchange mail.corp.example] [--service-account svc_seg] [config.json]",
		"Writes a starting config.json for a new site and config.json.md explaining each key. Refuses to overwrite either file.", stderr)
	domain := fs.String("domain", "CORP.EXAMPLE", "the primary domain (Kerberos realm), in uppercase")
	dc := fs.String("dc", "", "a domain controller's FQDN (default dc1.<domain>)")
	exchange := fs.String("exchange", "", "Exchange's host name, for the target SPN and URL (default mail.<domain>)")
	svc := fs.String("service-account", "svc_seg", "the KCD service account's name (not a computer account)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	path, err := fileArg("config init", pos)
	if err != nil {
		return err
	}
	lower := strings.ToLower(*domain)
	v := siteValues{Domain: *domain, DomainLower: lower, DC: *dc, Exchange: *exchange, Service: *svc, BaseDN: baseDN(lower)}
	if v.DC == "" {
		v.DC = "dc1." + lower
	}
	if v.Exchange == "" {
		v.Exchange = "mail." + lower
	}
	if strings.ContainsAny(v.Domain+v.DC+v.Exchange+v.Service, `"\{}`) {
		return usageError{"config init: quotes, backslashes and braces are not allowed in the flags"}
	}
	js, err := initFile(v)
	if err != nil {
		return err
	}
	// The written file must load as `run` loads it; only the placeholders
	// (the password, the files to provide) are left to the operator.
	if _, rep, err := config.Parse(path, js); err != nil {
		for _, p := range rep.Errors() {
			_, _ = fmt.Fprintf(stderr, "  %s\n", p)
		}
		return usageError{"config init: the flags give an invalid configuration (see above)"}
	}
	md, err := initNotes(v, path)
	if err != nil {
		return err
	}
	mdPath := path + ".md"
	for _, p := range []string{path, mdPath} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("config init: %s exists; not overwriting it (remove it or name another file)", p)
		}
	}
	if err := writeNew(path, js, 0o600); err != nil {
		return err
	}
	if err := writeNew(mdPath, []byte(md), 0o644); err != nil {
		return err
	}
	_, _ = fmt.Fprintf(stdout, "wrote %s and %s (what each key means and what to fill in)\n", path, mdPath)
	_, _ = fmt.Fprintf(stdout, "next: fill in the password, the trust store, the CRL URLs and the server certificate, then\n  segmesh config check %s\n", path)
	return nil
}

// writeNew creates path with data, failing if it exists.
func writeNew(path string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("config init: %s exists; not overwriting it", path)
		}
		return fmt.Errorf("config init: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("config init: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("config init: write %s: %w", path, err)
	}
	return nil
}

// baseDN turns corp.example into DC=corp,DC=example.
func baseDN(domain string) string {
	parts := strings.Split(domain, ".")
	for i, p := range parts {
		parts[i] = "DC=" + p
	}
	return strings.Join(parts, ",")
}
