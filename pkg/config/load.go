package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/segmesh/segmesh/pkg/safefile"
)

// Load reads and validates config.json. It never writes: `.plaintext`
// secrets are decrypted here only if already encrypted, and left as typed
// otherwise (see EncryptPlaintextSecrets). The Report holds every finding;
// when any is an error, the returned error is an *Error listing them all and
// the Config is nil.
func Load(path string) (*Config, *Report, error) { return LoadFor(path, nil) }

// LoadFor is Load for a process running roles: it opens only the secrets
// those roles use (see Secrets); nil roles means every secret.
func LoadFor(path string, roles []string) (*Config, *Report, error) {
	data, readable, err := readConfigFile(path)
	if err != nil {
		return nil, nil, err
	}
	return parseFor(path, data, roles, readable)
}

// readConfigFile reads config.json at path through pkg/safefile: a FIFO
// there would block the start, every reload and `config check` until a
// writer comes, and a link to /dev/zero would be read without end. It is
// refused unless it is a regular file of at most MaxConfigFile bytes that
// no other local user could replace (safefile.CheckReplaceable): whoever
// writes config.json points segmesh.identity's LDAP URL at their own host
// and receives the bind password, or names a trust store of theirs.
// readable is CheckPrivate's finding on the file read (nil when no other
// local user may read it): a secret written in clear there is theirs too
// (openSecrets).
func readConfigFile(path string) (data []byte, readable *safefile.ExposedError, err error) {
	data, err = safefile.ReadChecked(path, MaxConfigFile, func(p string, fi os.FileInfo) error {
		if err := safefile.CheckReplaceable(p, fi); err != nil {
			return err
		}
		readable, _ = errors.AsType[*safefile.ExposedError](safefile.CheckPrivate(p, fi))
		return nil
	})
	if err != nil {
		return nil, nil, readError(path, err)
	}
	return data, readable, nil
}

// readError is readConfigFile's error for err.
func readError(path string, err error) error {
	if e, ok := errors.AsType[*safefile.ExposedError](err); ok {
		return fmt.Errorf("config: %s: %s; fix: %s: %w", path, e.Explain(path, "replace"), e.Fix, err)
	}
	switch {
	case errors.Is(err, safefile.ErrNotRegular):
		return fmt.Errorf("config: read %s: %w (a FIFO, a device or a directory); name the config.json file itself", path, err)
	case errors.Is(err, safefile.ErrTooLarge):
		return fmt.Errorf("config: %s is larger than %d bytes, not a segmesh config.json; name the config.json file: %w", path, MaxConfigFile, err)
	}
	return fmt.Errorf("config: read %s: %w", path, err)
}

// Parse is Load on bytes already read; path names the file in messages and
// anchors relative paths.
func Parse(path string, data []byte) (*Config, *Report, error) { return ParseFor(path, data, nil) }

// ParseFor is LoadFor on bytes already read.
func ParseFor(path string, data []byte, roles []string) (*Config, *Report, error) {
	return parseFor(path, data, roles, nil)
}

// parseFor is ParseFor for bytes read from a file that other local users
// may read (readable, CheckPrivate's finding; nil: they may not).
func parseFor(path string, data []byte, roles []string, readable *safefile.ExposedError) (*Config, *Report, error) {
	r := &Report{}
	if p := fileProblem(data); p != nil {
		r.Problems = append(r.Problems, *p)
		return nil, r, &Error{Path: path, Problems: r.Errors()}
	}
	var generic any
	if err := json.Unmarshal(data, &generic); err != nil {
		line, col := position(data, err)
		r.add(SeverityError, "(file)", "", fmt.Sprintf("malformed JSON at line %d, column %d: %v", line, col, syntaxMessage(err)),
			"correct the JSON at that position (a missing comma or quote is the usual cause)")
		return nil, r, &Error{Path: path, Problems: r.Errors()}
	}
	obj, ok := generic.(map[string]any)
	if !ok {
		r.add(SeverityError, "(file)", "", "the file is not a JSON object", `start the file with "{"`)
		return nil, r, &Error{Path: path, Problems: r.Errors()}
	}
	set := map[string]bool{}
	checkKeys(obj, reflect.TypeFor[Config](), "", r, set)
	duplicateKeys(data, r)

	if ps := secretTypeProblems(data); len(ps) > 0 {
		r.Problems = append(r.Problems, ps...)
		return nil, r, &Error{Path: path, Problems: r.Errors()}
	}
	cfg := Default()
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&cfg); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			r.Problems = append(r.Problems, typeProblem(data, te))
		} else {
			r.add(SeverityError, "(file)", "", err.Error(), "correct the value")
		}
		return nil, r, &Error{Path: path, Problems: r.Errors()}
	}
	parseGateway(cfg.CustomGatewaySettings, &cfg.Gateway, r)
	cfg.set = set
	normalize(&cfg, r)

	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	cfg.setPath(abs)
	cfg.openSecrets(r, roles, readable)
	validate(&cfg, r)
	if errs := r.Errors(); len(errs) > 0 {
		return nil, r, &Error{Path: path, Problems: errs}
	}
	return &cfg, r, nil
}

// setPath records config.json's absolute path and the directory relative
// paths are resolved against (segmesh.installDir, else config.json's folder).
// Encrypting secrets before Load uses it too, so both find the same key file.
func (c *Config) setPath(abs string) {
	c.Path = abs
	c.BaseDir = filepath.Dir(abs)
	if c.Segmesh.InstallDir != "" {
		c.BaseDir = c.Resolve(c.Segmesh.InstallDir)
	}
}

// IsSet reports whether config.json wrote the setting at the JSON path
// (segmesh.identity.ldapPoolSize, customGatewaySettings.cert.mapping.enabled);
// false means its value is the default.
func (c *Config) IsSet(path string) bool { return c.set[path] }

// normalize removes what the console's text boxes let through and every
// role would otherwise trim differently: spaces around a domain or a domain
// controller. Each trimmed value is reported.
func normalize(c *Config, r *Report) {
	for i := range c.KCD.Domains {
		d := &c.KCD.Domains[i]
		for key, v := range map[string]*string{"domain": &d.Domain, "domainController": &d.DomainController} {
			if t := strings.TrimSpace(*v); t != *v {
				r.add(SeverityWarning, fmt.Sprintf("kcd.domains[%d].%s", i, key), *v, fmt.Sprintf("has spaces around it; segmesh uses %q", t), "remove the spaces")
				*v = t
			}
		}
	}
}

// Resolve returns p made absolute against the install directory.
//
// SEG keeps config.json in <install>/config and writes relative paths from
// <install> ("config/ssl-certs/CA01.pem"). When config.json sits in a folder
// named config and segmesh.installDir is not set, a relative path that starts
// with config/ is resolved from that folder's parent, so a file copied from a
// SEG box works unchanged (docs/migrate-from-seg.md). Every other relative
// path is resolved against BaseDir.
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	if c.SEGLayout() {
		// SEG on Windows writes config\ssl-certs\...: the same path.
		if rest, ok := strings.CutPrefix(strings.ReplaceAll(p, `\`, "/"), segConfigDir+"/"); ok {
			return filepath.Join(c.BaseDir, filepath.FromSlash(rest))
		}
	}
	return filepath.Join(c.BaseDir, p)
}

// segConfigDir is the folder of a SEG install that holds config.json.
const segConfigDir = "config"

// SEGLayout reports whether config.json sits in a folder named config with no
// segmesh.installDir, as in a SEG install (<install>/config/config.json): then
// relative paths starting with config/ are read from <install>.
func (c *Config) SEGLayout() bool {
	return c.Segmesh.InstallDir == "" && c.BaseDir != "" && filepath.Base(c.BaseDir) == segConfigDir
}

// checkKeys reports every key of obj that t has no field for, suggesting the
// nearest known one, and recurses into nested objects and arrays of objects.
func checkKeys(obj map[string]any, t reflect.Type, prefix string, r *Report, set map[string]bool) {
	fields := map[string]reflect.Type{}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		fields[tag] = f.Type
		names = append(names, tag)
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		key := prefix + k
		ft, ok := fields[k]
		if !ok {
			fix := "remove it; known keys here: " + strings.Join(names, ", ")
			if s := nearest(k, names); s != "" {
				fix = fmt.Sprintf("did you mean %q?", prefix+s)
			}
			r.add(SeverityError, key, "", "unknown key", fix)
			continue
		}
		set[key] = true
		switch v := obj[k].(type) {
		case map[string]any:
			switch {
			case ft.Kind() == reflect.Struct:
				checkKeys(v, ft, key+".", r, set)
			case ft.Kind() == reflect.Map:
				for mk := range v {
					set[key+"."+mk] = true
				}
			}
		case []any:
			if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
				for i, e := range v {
					if m, ok := e.(map[string]any); ok {
						checkKeys(m, ft.Elem(), fmt.Sprintf("%s[%d].", key, i), r, set)
					}
				}
			}
		}
	}
}

// position converts a JSON error's byte offset into a 1-based line and column.
func position(data []byte, err error) (line, col int) {
	var off int64
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
		if off > 0 && off < int64(len(data)) {
			off-- // Offset is just past the offending character; point at it
		}
	case errors.As(err, &te):
		off = te.Offset
	default:
		off = int64(len(data))
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	line, col = 1, 1
	for _, b := range data[:off] {
		if b == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}

func syntaxMessage(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return se.Error()
	}
	if errors.Is(err, errors.ErrUnsupported) {
		return "unsupported"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// Rules returns what Load's validation finds in c, every severity: the
// rules that tie settings together (KCD on needs a target SPN, an Exchange
// URL must not hold a path the edge appends, an ldaps:// URL on a plain
// port while the mapping is on, ...). c is not changed and no file is
// read. A reload runs it on the configuration the roles would hold (live
// settings from the new file, those waiting for a restart at their running
// values), which is a combination no file states.
func Rules(c *Config) []Problem {
	r := &Report{}
	validate(c, r)
	return r.Problems
}
