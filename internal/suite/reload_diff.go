package suite

import (
	"crypto/sha256"
	"io"
	"reflect"
	"slices"
	"strings"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/secret"
)

// change is one setting that differs between two configurations.
type change struct {
	// Key is the setting's JSON path (segmesh.edge.exchangeUrls); a list of
	// objects (kcd.domains) is one key.
	Key string
	// Roles are the roles that use it (its "roles" tags); "all" means every
	// role.
	Roles []string
}

// usedBy reports whether a role among roles uses the setting.
func (c change) usedBy(roles []string) bool {
	if len(c.Roles) == 0 || slices.Contains(c.Roles, "all") {
		return true
	}
	return slices.ContainsFunc(c.Roles, func(r string) bool { return slices.Contains(roles, r) })
}

var secretType = reflect.TypeFor[secret.Secret]()

// diffConfig lists the settings of config.json that differ between a and
// b, by their JSON paths. Secrets are compared by value (a changed
// password is a change), which the masked JSON could not show. The custom
// gateway settings are compared key by key, as parsed (Gateway), under
// their own dotted names (cert.mapping.ldap.url): one of them can be live
// while another takes a restart, and a key segmesh ignores changes nothing.
func diffConfig(a, b *config.Config) []change {
	var out []change
	diffStruct(reflect.ValueOf(*a), reflect.ValueOf(*b), "", &out)
	out = slices.DeleteFunc(out, func(c change) bool { return c.Key == "customGatewaySettings" })
	ga, gb := reflect.ValueOf(a.Gateway), reflect.ValueOf(b.Gateway)
	t := ga.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if key := f.Tag.Get("key"); key != "" && !equalSetting(ga.Field(i), gb.Field(i)) {
			out = append(out, change{Key: key, Roles: rolesOf(f)})
		}
	}
	return out
}

func diffStruct(a, b reflect.Value, prefix string, out *[]change) {
	t := a.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		key := prefix + name
		av, bv := a.Field(i), b.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Type != secretType {
			diffStruct(av, bv, key+".", out)
			continue
		}
		if equalSetting(av, bv) {
			continue
		}
		*out = append(*out, change{Key: key, Roles: rolesOf(f)})
	}
}

// keepSettings returns a copy of next in which each setting keys names
// (JSON paths as diffConfig names them, custom gateway settings by their
// dotted names) has from's value. The reload hands the roles next with the
// settings that take a restart kept at the values the roles run on, so that
// a role applying its settings live cannot take one of those along (the
// service account's password, read by ticket and identity, saved together
// with a setting the identity role applies: TestAttackReloadPendingSettingApplied).
func keepSettings(next, from *config.Config, keys []string) *config.Config {
	out := *next
	dst, src := reflect.ValueOf(&out).Elem(), reflect.ValueOf(from).Elem()
	for _, key := range keys {
		setSetting(dst, src, key)
	}
	return &out
}

// setSetting sets the setting key of the configuration dst to src's value.
func setSetting(dst, src reflect.Value, key string) {
	gd, gs := dst.FieldByName("Gateway"), src.FieldByName("Gateway")
	for i := range gd.NumField() {
		if gd.Type().Field(i).Tag.Get("key") == key {
			gd.Field(i).Set(gs.Field(i))
			return
		}
	}
	for {
		name, rest, nested := strings.Cut(key, ".")
		t, next := dst.Type(), -1
		for i := range t.NumField() {
			f := t.Field(i)
			if jn, _, _ := strings.Cut(f.Tag.Get("json"), ","); f.IsExported() && jn == name {
				next = i
				break
			}
		}
		if next < 0 {
			return
		}
		if !nested {
			dst.Field(next).Set(src.Field(next))
			return
		}
		if f := t.Field(next); f.Type.Kind() != reflect.Struct || f.Type == secretType {
			return
		}
		dst, src, key = dst.Field(next), src.Field(next), rest
	}
}

// equalSetting compares two values of one setting, secrets by their value.
func equalSetting(a, b reflect.Value) bool {
	if a.Type() == secretType {
		return a.Interface().(secret.Secret).Reveal() == b.Interface().(secret.Secret).Reveal()
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

// rolesOf returns a field's roles tag; for a list of objects, the union of
// its elements' fields' tags.
func rolesOf(f reflect.StructField) []string {
	if t := f.Tag.Get("roles"); t != "" {
		return strings.Split(t, ",")
	}
	et := f.Type
	for et.Kind() == reflect.Slice || et.Kind() == reflect.Pointer {
		et = et.Elem()
	}
	var out []string
	if et.Kind() == reflect.Struct && et != secretType {
		for i := range et.NumField() {
			for _, r := range strings.Split(et.Field(i).Tag.Get("roles"), ",") {
				if r != "" && !slices.Contains(out, r) {
					out = append(out, r)
				}
			}
		}
	}
	return out
}

// filesOf returns the files config.json points to that exist: every string
// setting (comma-separated lists split) that names a regular file beside
// or below the configuration, and the secrets key. Reading them is how the
// reload notices a changed certificate, key or mounted Secret.
func filesOf(c *config.Config) []string {
	var out []string
	add := func(s string) {
		for _, p := range strings.Split(s, ",") {
			p = strings.TrimSpace(p)
			if p == "" || strings.Contains(p, "://") {
				continue
			}
			if abs := c.Resolve(p); isRegular(abs) && !slices.Contains(out, abs) {
				out = append(out, abs)
			}
		}
	}
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.String:
			add(v.String())
		case reflect.Struct:
			if v.Type() == secretType {
				return
			}
			for i := range v.NumField() {
				if v.Type().Field(i).IsExported() {
					walk(v.Field(i))
				}
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(v.Index(i))
			}
		}
	}
	walk(reflect.ValueOf(c.KCD))
	walk(reflect.ValueOf(c.Segmesh))
	add(c.ClientCertTrustStorePath)
	add(c.ClientCertificateChain)
	if k := c.KeyFile(); isRegular(k) && !slices.Contains(out, k) {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// contentReadAgain are the settings whose files are read again without a
// restart: the trust store's (trust.Reloader polls them in the edge and
// the crl role) and the secrets key (every load decrypts with it; a
// changed secret shows as a changed setting).
var contentReadAgain = []string{"clientCertTrustStorePath", "clientCertificateChain", "segmesh.secretKeyFile"}

// fileSetting is a setting that names files, with a hash of their content.
type fileSetting struct {
	roles []string
	sum   [sha256.Size]byte
}

// fileSettings returns, by JSON path, the settings of c that name regular
// files (comma-separated lists split) with a hash of what those files
// hold now: a file rotated under the same path (an admin token, a server
// certificate) changes the hash, not the setting.
func fileSettings(c *config.Config) map[string]fileSetting {
	out := map[string]fileSetting{}
	var visit func(v reflect.Value, prefix string)
	visit = func(v reflect.Value, prefix string) {
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" || name == "" || f.Type == secretType {
				continue
			}
			if f.Type.Kind() == reflect.Struct {
				visit(v.Field(i), prefix+name+".")
				continue
			}
			var files []string
			for _, s := range stringsIn(v.Field(i)) {
				for p := range strings.SplitSeq(s, ",") {
					p = strings.TrimSpace(p)
					if p == "" || strings.Contains(p, "://") {
						continue
					}
					if abs := c.Resolve(p); isRegular(abs) {
						files = append(files, abs)
					}
				}
			}
			if len(files) == 0 {
				continue
			}
			h := sha256.New()
			for _, p := range files {
				_, _ = io.WriteString(h, p+"\x00")
				hashFile(h, p)
				_, _ = io.WriteString(h, "\x00")
			}
			var fs fileSetting
			fs.roles = rolesOf(f)
			h.Sum(fs.sum[:0])
			out[prefix+name] = fs
		}
	}
	visit(reflect.ValueOf(*c), "")
	return out
}

// stringsIn returns every string held in v (a string, or lists and
// structs of them), secrets left out.
func stringsIn(v reflect.Value) []string {
	switch v.Kind() {
	case reflect.String:
		return []string{v.String()}
	case reflect.Slice, reflect.Array:
		var out []string
		for i := range v.Len() {
			out = append(out, stringsIn(v.Index(i))...)
		}
		return out
	case reflect.Struct:
		if v.Type() == secretType {
			return nil
		}
		var out []string
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				out = append(out, stringsIn(v.Field(i))...)
			}
		}
		return out
	}
	return nil
}

// rotatedFiles lists the settings whose value is the same at boot and in
// next but whose files hold something else now, and that no role reads
// again by itself: the process still uses the content it read at the
// start, so they wait for a restart like a changed setting.
func rotatedFiles(boot map[string]fileSetting, next *config.Config, roles []string) []string {
	var out []string
	for key, now := range fileSettings(next) {
		was, ok := boot[key]
		if !ok || was.sum == now.sum || slices.Contains(contentReadAgain, key) {
			continue
		}
		if (change{Key: key, Roles: now.roles}).usedBy(roles) {
			out = append(out, key)
		}
	}
	slices.Sort(out)
	return out
}
