package krbhint

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestNoCodeDescribedElsewhere reads the module's non-test Go files and
// refuses any other table of Kerberos error codes: a switch over codes whose
// case returns text, a map keyed by codes, or a text that starts with a
// code's name as a label. Such a table drifts from this catalogue (there
// were four: pkg/s4u's hints, the ticket role's kdcCodes, diagnose's fixKDC
// and the status page's kdcCodeName).
func TestNoCodeDescribedElsewhere(t *testing.T) {
	fset := token.NewFileSet()
	files := 0
	var bad []string
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || path == filepath.Join("..", "..", "pkg", "krbhint")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.HasSuffix(path, ".pb.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		files++
		bad = append(bad, scan(fset, f)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("read only %d files: is the walk reading the module?", files)
	}
	for _, b := range bad {
		t.Errorf("%s; describe the code once in pkg/krbhint and use krbhint.Fix, FixFor, Describe, ClassOf or Temporary", b)
	}
}

// TestScanFindsEachKindOfTable feeds the scan one of each kind of table it
// refuses, and code that only branches on a code, which it allows.
func TestScanFindsEachKindOfTable(t *testing.T) {
	const src = `package x

var classes = map[int32]string{6: "not found"}

var named = map[int32]bool{errorcode.KDC_ERR_BADOPTION: true}

func hint(code int32) string {
	switch code {
	case errorcode.KDC_ERR_POLICY:
		return "policy refused the request"
	}
	return ""
}

func label(code string) string {
	switch code {
	case "24":
		return "wrong service account password"
	}
	return ""
}

func kdcCode(ke *KDCError) string {
	switch ke.Code {
	case 37:
		return "clock skew"
	}
	return ""
}

const note = "PREAUTH_FAILED: the password is wrong"

// allowed: behaviour, not description.
func retry(code int32) bool {
	if code == errorcode.KDC_ERR_PREAUTH_REQUIRED {
		return true
	}
	switch code {
	case errorcode.KRB_AP_ERR_SKEW:
		return true
	}
	log("S4U will fail with KDC_ERR_BADOPTION")
	return false
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "x.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := scan(fset, f)
	for _, line := range []int{3, 5, 9, 17, 25, 31} {
		want := fmt.Sprintf("x.go:%d:", line)
		found := false
		for _, g := range got {
			found = found || strings.HasPrefix(g, want)
		}
		if !found {
			t.Errorf("no report at line %d; got %q", line, got)
		}
	}
	if len(got) != 6 {
		t.Errorf("got %d reports, want 6: %q", len(got), got)
	}
}

// labelRE matches a text that starts with a catalogued code's name (with or
// without its KDC_ERR_ / KRB_AP_ERR_ / KRB_ERR_ prefix) used as a label.
var labelRE = func() *regexp.Regexp {
	var names []string
	for _, e := range Entries() {
		names = append(names, regexp.QuoteMeta(prefixRE.ReplaceAllString(e.Name(), "")))
	}
	return regexp.MustCompile(`^(KDC_ERR_|KRB_AP_ERR_|KRB_ERR_)?(` + strings.Join(names, "|") + `)\s*[:(=-]`)
}()

var prefixRE = regexp.MustCompile(`^(KDC_ERR_|KRB_AP_ERR_|KRB_ERR_)`)

// scan reports the Kerberos code tables in one file.
func scan(fset *token.FileSet, f *ast.File) []string {
	var bad []string
	report := func(n ast.Node, format string, a ...any) {
		bad = append(bad, fmt.Sprintf("%s: %s", fset.Position(n.Pos()), fmt.Sprintf(format, a...)))
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SwitchStmt:
			byCode := isCodeExpr(n.Tag)
			for _, s := range n.Body.List {
				cc := s.(*ast.CaseClause)
				if !hasCode(cc.List, byCode) {
					continue
				}
				if lit := firstText(cc.Body); lit != nil {
					report(cc, "a switch over Kerberos error codes returns text (%s)", lit.Value)
				}
			}
		case *ast.CompositeLit:
			mt, ok := n.Type.(*ast.MapType)
			if !ok {
				return true
			}
			intKeys := isIdent(mt.Key, "int32")
			for _, el := range n.Elts {
				kv, ok := el.(*ast.KeyValueExpr)
				if ok && (isErrorCode(kv.Key) || intKeys && isIntLit(kv.Key)) {
					report(n, "a map keyed by Kerberos error codes")
					break
				}
			}
		case *ast.BasicLit:
			if n.Kind != token.STRING {
				return true
			}
			if s, err := strconv.Unquote(n.Value); err == nil && labelRE.MatchString(s) {
				report(n, "a text labels a Kerberos error code (%s)", n.Value)
			}
		}
		return true
	})
	return bad
}

// hasCode reports whether a case lists a Kerberos error code: an errorcode
// constant, or a number when the switch is over a code.
func hasCode(list []ast.Expr, byCode bool) bool {
	for _, e := range list {
		if isErrorCode(e) || byCode && (isIntLit(e) || isDigits(e)) {
			return true
		}
	}
	return false
}

// firstText returns the first string literal of more than one word in a
// case body.
func firstText(body []ast.Stmt) *ast.BasicLit {
	var found *ast.BasicLit
	for _, s := range body {
		ast.Inspect(s, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && found == nil && lit.Kind == token.STRING && strings.Contains(lit.Value, " ") {
				found = lit
			}
			return found == nil
		})
	}
	return found
}

func isErrorCode(e ast.Expr) bool {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok || !isIdent(sel.X, "errorcode") {
		return false
	}
	return prefixRE.MatchString(sel.Sel.Name)
}

// isCodeExpr reports whether a switch tag names a code: code, ke.Code,
// ke.Code(), c.ErrorCode.
func isCodeExpr(e ast.Expr) bool {
	if c, ok := e.(*ast.CallExpr); ok {
		e = c.Fun
	}
	var name string
	switch e := e.(type) {
	case *ast.Ident:
		name = e.Name
	case *ast.SelectorExpr:
		name = e.Sel.Name
	default:
		return false
	}
	return strings.EqualFold(name, "code") || strings.HasSuffix(name, "Code")
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

func isIntLit(e ast.Expr) bool {
	lit, ok := e.(*ast.BasicLit)
	return ok && lit.Kind == token.INT
}

func isDigits(e ast.Expr) bool {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return false
	}
	s, err := strconv.Unquote(lit.Value)
	if err != nil || s == "" {
		return false
	}
	_, err = strconv.Atoi(s)
	return err == nil
}
