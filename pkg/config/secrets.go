package config

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/segmesh/segmesh/pkg/atomicfile"
	"github.com/segmesh/segmesh/pkg/safefile"
	"github.com/segmesh/segmesh/pkg/secret"
)

const (
	// PlaintextSuffix marks a secret typed in clear, as in SEG: the value
	// without the suffix is the secret, encrypted at the next start.
	PlaintextSuffix = ".plaintext"
	// encPrefix marks a secret encrypted by segmesh (AES-256-GCM, base64 of nonce||ciphertext).
	encPrefix = "enc:v1:"
	// KeyEnv holds the secrets key, base64 of 32 bytes (Kubernetes: from a Secret).
	KeyEnv = "SEGMESH_CONFIG_KEY"
	// KeyFileEnv names a file holding the secrets key (a mounted Secret).
	KeyFileEnv = "SEGMESH_CONFIG_KEY_FILE"
	// defaultKeyFile is created beside config.json when no key is configured.
	defaultKeyFile = "config.key"
)

// SecretDecl declares one secret of config.json: where it is and which
// roles use it. A process opens only the secrets of the roles it runs.
type SecretDecl struct {
	// Path is the JSON path (kcd.serviceAccountPassword).
	Path string
	// Roles are the roles that use the secret.
	Roles []string
}

// Secrets returns the declarations of every secret in config.json: each
// field of type secret.Secret, its roles from the field's "roles" tag.
func Secrets() []SecretDecl {
	var out []SecretDecl
	walkSecrets(reflect.TypeFor[Config](), "", func(path string, f reflect.StructField, _ []int) {
		var roles []string
		if t := f.Tag.Get("roles"); t != "" {
			roles = strings.Split(t, ",")
		}
		out = append(out, SecretDecl{Path: path, Roles: roles})
	})
	return out
}

// secretType is the type of every secret setting.
var secretType = reflect.TypeFor[secret.Secret]()

// walkSecrets calls fn for every secret.Secret field under t (not inside
// slices or maps), with its JSON path and field index.
func walkSecrets(t reflect.Type, prefix string, fn func(path string, f reflect.StructField, index []int)) {
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			idx := append(slices.Clone(index), i)
			switch {
			case f.Type == secretType:
				fn(prefix+name, f, idx)
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type, prefix+name+".", idx)
			}
		}
	}
	walk(t, prefix, nil)
}

// secretField returns the setting at index in c.
func (c *Config) secretField(index []int) *secret.Secret {
	return reflect.ValueOf(c).Elem().FieldByIndex(index).Addr().Interface().(*secret.Secret)
}

// Withheld reports whether config.json sets the secret at path but this
// process did not open it (none of its roles uses it): its value here is
// empty and it was never decrypted.
func (c *Config) Withheld(path string) bool { return c.withheld[path] }

// HasSecret reports whether config.json sets the secret at path, opened or
// withheld.
func (c *Config) HasSecret(path string) bool {
	if c.withheld[path] {
		return true
	}
	found := false
	walkSecrets(reflect.TypeFor[Config](), "", func(p string, _ reflect.StructField, index []int) {
		if p == path {
			found = !c.secretField(index).IsZero()
		}
	})
	return found
}

// KeyFile returns where the secrets key lives for this configuration (a
// file; SEGMESH_CONFIG_KEY, when set, is used instead of any file).
func (c *Config) KeyFile() string {
	if p := os.Getenv(KeyFileEnv); p != "" {
		return p
	}
	if c.Segmesh.SecretKeyFile != "" {
		return c.Resolve(c.Segmesh.SecretKeyFile)
	}
	return filepath.Join(filepath.Dir(c.Path), defaultKeyFile)
}

// openSecrets strips the ".plaintext" suffix and decrypts "enc:v1:" values in
// memory, recording a finding for each. Only the secrets one of roles uses
// are opened (nil roles: every secret); the others are emptied, never
// decrypted, and remembered as withheld, so a process holds no secret it
// does not need and needs no key when it uses none.
func (c *Config) openSecrets(r *Report, roles []string, readable *safefile.ExposedError) {
	var key []byte
	var keyErr error
	walkSecrets(reflect.TypeFor[Config](), "", func(path string, f reflect.StructField, index []int) {
		s := c.secretField(index)
		v := s.Reveal()
		if readable != nil && v != "" && !strings.HasPrefix(v, encPrefix) && !strings.HasSuffix(v, PlaintextSuffix) {
			// In clear for good (segmesh run encrypts only ".plaintext"
			// values), whichever role uses it: the file is everyone's.
			r.add(SeverityError, path, "", "is written in clear in "+c.Path+", and "+readable.Explain(c.Path, "read")+": whoever reads it has the secret",
				fmt.Sprintf("write it again with the suffix %q (segmesh run encrypts it), or %s; then change it, as others could read it", PlaintextSuffix, readable.Fix))
		}
		if v != "" && roles != nil && !usedBy(f.Tag.Get("roles"), roles) {
			if strings.HasSuffix(v, PlaintextSuffix) {
				r.add(SeverityWarning, path, "", "is in plain text, and no role of this process uses it: the process that runs a role using it encrypts it at its start with its key", "")
			}
			*s = secret.Secret{}
			if c.withheld == nil {
				c.withheld = map[string]bool{}
			}
			c.withheld[path] = true
			return
		}
		switch {
		case strings.HasSuffix(v, PlaintextSuffix):
			plain := strings.TrimSuffix(v, PlaintextSuffix)
			*s = secret.New(plain)
			r.add(SeverityWarning, path, "", "is in plain text; segmesh run encrypts it and rewrites config.json at the next start", "")
			secretSpaces(r, path, plain)
		case strings.HasSuffix(strings.ToLower(v), PlaintextSuffix):
			r.add(SeverityError, path, "", fmt.Sprintf("ends in %q in other letters; only the lower case suffix %q marks a secret to encrypt, so this would be used as the password with the suffix in it",
				v[len(v)-len(PlaintextSuffix):], PlaintextSuffix), fmt.Sprintf("write the suffix in lower case: %q", PlaintextSuffix))
			return
		case v != "" && !strings.HasPrefix(v, encPrefix):
			r.add(SeverityWarning, path, "", "is written in clear and used exactly as written: it stays readable in config.json, and a value copied from a SEG box (SEG's own encryption) will not work here",
				fmt.Sprintf("write the password again with the suffix %q: segmesh run encrypts it (segmesh config encrypt does it now)", PlaintextSuffix))
			secretSpaces(r, path, v)
		case strings.HasPrefix(v, encPrefix):
			if key == nil && keyErr == nil {
				key, keyErr = c.loadKey(false)
			}
			if keyErr != nil {
				r.add(SeverityError, path, "", "is encrypted but the key cannot be read: "+keyErr.Error(),
					fmt.Sprintf("restore the key file or %s, or type the secret again with the suffix %q", KeyEnv, PlaintextSuffix))
				return
			}
			plain, err := decrypt(key, strings.TrimPrefix(v, encPrefix))
			if err != nil {
				r.add(SeverityError, path, "", "cannot be decrypted with the configured key (was config.json copied without its key?)",
					fmt.Sprintf("type the secret again with the suffix %q", PlaintextSuffix))
				return
			}
			*s = secret.New(plain)
		}
	})
}

// usedBy reports whether a secret whose roles tag is tag is used by one of roles.
func usedBy(tag string, roles []string) bool {
	for r := range strings.SplitSeq(tag, ",") {
		if slices.Contains(roles, r) {
			return true
		}
	}
	return false
}

// secretSpaces warns about a secret that starts or ends with white space:
// almost always pasted by mistake, and the KDC or the PFX then refuses a
// password that looks right.
func secretSpaces(r *Report, path, plain string) {
	if plain != strings.TrimSpace(plain) {
		r.add(SeverityWarning, path, "", "starts or ends with a space (or tab), which is part of the password as written",
			"remove the space unless the password really has one")
	}
}

func encrypt(key []byte, plain string) (string, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return encPrefix + base64.StdEncoding.EncodeToString(gcm.Seal(nonce, nonce, []byte(plain), nil)), nil
}

func decrypt(key []byte, b64 string) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return "", err
	}
	if len(raw) < gcm.NonceSize() {
		return "", errors.New("ciphertext too short")
	}
	out, err := gcm.Open(nil, raw[:gcm.NonceSize()], raw[gcm.NonceSize():], nil)
	if err != nil {
		return "", err
	}
	return string(out), nil
}

// RewriteHook is called by EncryptPlaintextSecrets after the new content is
// written to the temporary file and before it replaces config.json; tests use
// it to interrupt the rewrite. Nil means no hook.
type RewriteHook func(tempPath string) error

// EncryptPlaintextSecrets encrypts every secret in the file at path whose
// value ends in ".plaintext" and replaces the file atomically (temporary
// file in the same directory, fsync, rename, fsync of the directory). Every
// other byte of the file stays as it was: keys, values, order, spacing. It
// returns the JSON paths it encrypted; none means nothing was written.
// `segmesh config encrypt` uses it; a process at its start uses
// EncryptPlaintextSecretsFor.
func EncryptPlaintextSecrets(path string, hook RewriteHook) ([]string, error) {
	return EncryptPlaintextSecretsFor(path, nil, hook)
}

// EncryptPlaintextSecretsFor is EncryptPlaintextSecrets for a process
// running roles (nil: all). With the key of the file (config.key beside it,
// or segmesh.secretKeyFile), which every process reading that file shares,
// every secret is encrypted, so none stays in clear at rest. With a key of
// the process (SEGMESH_CONFIG_KEY or SEGMESH_CONFIG_KEY_FILE, in split mode
// each deployment's own Secret) only the secrets of roles are: processes
// sharing config.json may hold different keys, and one that encrypted
// another role's secret under its own key would lock that role out. The
// other roles' .plaintext secrets stay for their own processes (and
// openSecrets warns about them). Roles that share a secret (the service
// account password: ticket and identity) must then share the key
// (docs/operations.md section 8).
func EncryptPlaintextSecretsFor(path string, roles []string, hook RewriteHook) ([]string, error) {
	data, _, err := readConfigFile(path)
	if err != nil {
		return nil, err
	}
	spans, err := findSecretSpans(data)
	if err != nil {
		// Malformed JSON: Parse's error names the line and column.
		if _, _, perr := Parse(path, data); perr != nil {
			return nil, perr
		}
		return nil, fmt.Errorf("config: scan %s: %w", path, err)
	}
	processKey := os.Getenv(KeyEnv) != "" || os.Getenv(KeyFileEnv) != ""
	used := map[string]bool{}
	for _, d := range Secrets() {
		used[d.Path] = roles == nil || !processKey || usedBy(strings.Join(d.Roles, ","), roles)
	}
	var todo []span
	for _, sp := range spans {
		if sp.kind == "" && used[sp.path] && strings.HasSuffix(sp.value, PlaintextSuffix) {
			todo = append(todo, sp)
		}
	}
	if len(todo) == 0 {
		return nil, nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c := &Config{}
	var seg struct {
		Segmesh struct {
			SecretKeyFile string `json:"secretKeyFile"`
			InstallDir    string `json:"installDir"`
		} `json:"segmesh"`
	}
	if err := json.Unmarshal(data, &seg); err == nil {
		c.Segmesh.SecretKeyFile = seg.Segmesh.SecretKeyFile
		c.Segmesh.InstallDir = seg.Segmesh.InstallDir
	}
	c.setPath(abs) // the key file Load will read
	key, err := c.loadKey(true)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var out bytes.Buffer
	last := 0
	var done []string
	for _, sp := range todo {
		enc, err := encrypt(key, strings.TrimSuffix(sp.value, PlaintextSuffix))
		if err != nil {
			return nil, fmt.Errorf("config: encrypt %s: %w", sp.path, err)
		}
		q, _ := json.Marshal(enc)
		out.Write(data[last:sp.start])
		out.Write(q)
		last = sp.end
		done = append(done, sp.path)
	}
	out.Write(data[last:])
	if err := writeAtomic(abs, out.Bytes(), hook); err != nil {
		return nil, fmt.Errorf("config: rewrite %s: %w", path, err)
	}
	return done, nil
}

// writeAtomic replaces path with data, keeping the file's mode (0600 for a
// new file), so that a crash at any point leaves either file whole. When
// path is a symbolic link (a Kubernetes ConfigMap's ..data layout, a
// package's /etc link) the file it points to is replaced and the link
// kept: replacing the link would leave the plaintext in the real file and
// cut config.json off from later edits to it.
func writeAtomic(path string, data []byte, hook RewriteHook) error {
	if target, err := filepath.EvalSymlinks(path); err == nil && target != path {
		if err := atomicfile.Write(target, data, modeOf(target), atomicfile.Hook(hook)); err != nil {
			return fmt.Errorf("%w (config.json links to %s; if that is read-only, as a ConfigMap is, encrypt the secret elsewhere with segmesh config encrypt and store the result, or give the password in a Secret)", err, target)
		}
		return nil
	}
	return atomicfile.Write(path, data, modeOf(path), atomicfile.Hook(hook))
}

// modeOf returns path's permission bits, 0600 when it does not exist.
func modeOf(path string) os.FileMode {
	mode := os.FileMode(0o600)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	return mode
}

// span is where one secret's JSON string value sits in the file.
type span struct {
	path       string
	start, end int // byte offsets of the quoted string, quotes included
	value      string
	// kind is what the value is when it is no string ("a number", "true
	// or false", "an object", "a list"); start is then where it begins,
	// and end and value are not set. "" for a string.
	kind string
}

// findSecretSpans walks the JSON tokens, tracking the key path, and returns
// the byte span of every secret path's string value.
func findSecretSpans(data []byte) ([]span, error) {
	want := map[string]bool{}
	for _, d := range Secrets() {
		want[d.Path] = true
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var stack []jsonFrame
	pathOf := func() string {
		parts := make([]string, 0, len(stack))
		for _, f := range stack {
			if !f.object {
				return "" // inside an array: no secret lives there
			}
			parts = append(parts, f.key)
		}
		return strings.Join(parts, ".")
	}
	var out []span
	for {
		before := dec.InputOffset()
		tok, err := dec.Token()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		isValue := true
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].expectKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:n-1]
				markValueDone(stack)
				continue
			}
			stack[n-1].key = tok.(string)
			stack[n-1].expectKey = false
			continue
		}
		if kind := otherKind(tok); kind != "" {
			if p := pathOf(); want[p] {
				out = append(out, span{path: p, start: valueStart(data, int(before)), kind: kind})
			}
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, jsonFrame{object: true, expectKey: true})
				isValue = false
			case '[':
				stack = append(stack, jsonFrame{})
				isValue = false
			case '}', ']':
				stack = stack[:len(stack)-1]
			}
		case string:
			if p := pathOf(); want[p] {
				start := int(before)
				for start < len(data) && data[start] != '"' {
					start++
				}
				out = append(out, span{path: p, start: start, end: int(dec.InputOffset()), value: t})
			}
		}
		if isValue {
			markValueDone(stack)
		}
	}
}

// jsonFrame is one open object or array while walking tokens.
type jsonFrame struct {
	object    bool
	expectKey bool
	key       string
}

// markValueDone flips the enclosing object back to expecting a key.
func markValueDone(stack []jsonFrame) {
	if n := len(stack); n > 0 && stack[n-1].object {
		stack[n-1].expectKey = true
	}
}
