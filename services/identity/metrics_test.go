package identity

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/segmesh/segmesh/internal/testmetric"
	"github.com/segmesh/segmesh/pkg/certmap/ldaptest"
	"github.com/segmesh/segmesh/pkg/flight"
	"github.com/segmesh/segmesh/pkg/role"
)

func TestMetrics(t *testing.T) {
	d := newDirectory(t, ldaptest.Options{})
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	_, cl, err := startWith(t, role.Deps{Meter: mp.Meter("identity")}, testConfig(d))
	if err != nil {
		t.Fatal(err)
	}
	for _, der := range [][]byte{d.bob, d.bob, d.nobody} {
		_, _ = mapCert(cl, der)
	}
	checks := []struct {
		name  string
		attrs []attribute.KeyValue
		want  int64
	}{
		{"segmesh_identity_requests", []attribute.KeyValue{attribute.String("result", "ok"), attribute.String("source", "ldap_mapping")}, 2},
		{"segmesh_identity_requests", []attribute.KeyValue{attribute.String("result", "refused")}, 1},
		{"segmesh_identity_ldap_lookups", []attribute.KeyValue{attribute.String("result", "mapped")}, 1},
		{"segmesh_identity_ldap_lookups", []attribute.KeyValue{attribute.String("result", "not_found")}, 1},
		{"segmesh_identity_cache_lookups", []attribute.KeyValue{attribute.Bool("hit", true)}, 1},
		{"segmesh_identity_cache_lookups", []attribute.KeyValue{attribute.Bool("hit", false)}, 2},
	}
	for _, c := range checks {
		if got := testmetric.Sum(t, reader, c.name, c.attrs...); got != c.want {
			t.Errorf("%s%v = %d, want %d", c.name, c.attrs, got, c.want)
		}
	}
}

// TestDirectoryLookupPanicCounted: a directory lookup that panics (in the
// mapper's shared lookup, whether or not a call still waits for it) is
// logged at error level with its stack and counted in
// segmesh_background_panics (task directory_lookup) through the mapper's
// Panic hook.
func TestDirectoryLookupPanicCounted(t *testing.T) {
	d := newDirectory(t, ldaptest.Options{})
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	var logs bytes.Buffer
	svc, err := New(role.Deps{Meter: mp.Meter("identity"), Logger: slog.New(slog.NewTextHandler(&logs, nil))}, WithConfig(testConfig(d)))
	if err != nil {
		t.Fatal(err)
	}
	hook := svc.buildOptions().Hooks.Panic
	if hook == nil {
		t.Fatal("the role gives the mapper no Panic hook")
	}
	hook(&flight.Panic{Call: "certmap: the directory lookup", Value: "unexpected directory answer", Stack: []byte("goroutine 7 [running]:\ncertmap.(*Mapper).lookup")})
	if got := testmetric.Sum(t, reader, "segmesh_background_panics", attribute.String("task", "directory_lookup")); got != 1 {
		t.Fatalf("segmesh_background_panics{task=directory_lookup} = %d, want 1", got)
	}
	for _, want := range []string{"level=ERROR", "task=directory_lookup", "unexpected directory answer", "goroutine 7"} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("log lacks %q:\n%s", want, logs.String())
		}
	}
}
