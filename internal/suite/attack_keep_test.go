package suite

import (
	"reflect"
	"testing"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/secret"
)

// changeEvery sets every exported leaf of v (a struct) to a value other
// than its own: the settings of config.json and the parsed custom gateway
// settings alike.
func changeEvery(tb testing.TB, v reflect.Value) {
	tb.Helper()
	for i := range v.NumField() {
		f, fv := v.Type().Field(i), v.Field(i)
		if !f.IsExported() {
			continue
		}
		switch {
		case f.Type == secretType:
			fv.Set(reflect.ValueOf(secret.New(fv.Interface().(secret.Secret).Reveal() + "-changed")))
		case f.Type.Kind() == reflect.Struct:
			changeEvery(tb, fv)
		case f.Type.Kind() == reflect.String:
			fv.SetString(fv.String() + "-changed")
		case f.Type.Kind() == reflect.Bool:
			fv.SetBool(!fv.Bool())
		case fv.CanInt():
			fv.SetInt(fv.Int() + 7)
		case fv.CanUint():
			fv.SetUint(fv.Uint() + 7)
		case fv.CanFloat():
			fv.SetFloat(fv.Float() + 7)
		case f.Type.Kind() == reflect.Slice:
			fv.Set(reflect.Append(fv, reflect.New(f.Type.Elem()).Elem()))
		case f.Type.Kind() == reflect.Map:
			m := reflect.MakeMap(f.Type)
			m.SetMapIndex(reflect.New(f.Type.Key()).Elem(), reflect.New(f.Type.Elem()).Elem())
			fv.Set(m)
		case f.Type.Kind() == reflect.Pointer:
			fv.Set(reflect.New(f.Type.Elem()))
		default:
			tb.Fatalf("%s: a setting of kind %s the test cannot change", f.Name, f.Type.Kind())
		}
	}
}

// TestAttackKeepSettingsResolvesEverySetting: a reload hands the roles the
// new configuration with each setting that waits for a restart kept at the
// start's value (keepSettings, d9511bc). A setting whose name keepSettings
// does not resolve to a field is silently handed over at its new value, and
// a role applying its settings live would take it along while /readyz says
// it waits for a restart. With every setting of config.json changed at
// once and every one the reload names kept, nothing may differ from the
// start. Attacker review (review2); held.
func TestAttackKeepSettingsResolvesEverySetting(t *testing.T) {
	boot := config.Default()
	next := boot
	changeEvery(t, reflect.ValueOf(&next).Elem())
	changed := diffConfig(&boot, &next)
	if len(changed) < 50 {
		t.Fatalf("diffConfig names %d settings after every one changed; the test changes too little", len(changed))
	}
	keys := make([]string, 0, len(changed))
	for _, c := range changed {
		keys = append(keys, c.Key)
	}
	if left := diffConfig(&boot, keepSettings(&next, &boot, keys)); len(left) > 0 {
		t.Fatalf("kept at the start's value, these settings still reach the roles at their new value: %+v", left)
	}
}
