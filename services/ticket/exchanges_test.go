package ticket

import (
	"context"
	"strings"
	"testing"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/kdc/kdctest"
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/pkg/telemetry"
)

// TestKDCExchangeResults: KDC_ERR_PREAUTH_REQUIRED (25) at the AS exchange,
// the first round trip of every TGT, is counted as its own result,
// preauth_required, not krb_error: an idle gateway does not look as if
// half its AS exchanges failed (deploy/monitoring's alert had to leave out
// krb_code 25). A real refusal (6, an unknown user at S4U2Self) stays
// krb_error. Left by issue 26 in session 4.
func TestKDCExchangeResults(t *testing.T) {
	k := fakeRealm(t)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	c := config.Default()
	svc, err := New(role.Deps{Config: &c, Meter: mp.Meter("ticket")}, WithConfig(testConfig(k.Addr())))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	if _, _, err := svc.Ticket(context.Background(), "nobody@lab.test", ""); err == nil {
		t.Fatal("a ticket for an unknown user")
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{} // stage/result/krb_code
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			if mt.Name != telemetry.MetricTicketKDCExchanges {
				continue
			}
			for _, dp := range mt.Data.(metricdata.Sum[int64]).DataPoints {
				stage, _ := dp.Attributes.Value("stage")
				result, _ := dp.Attributes.Value(telemetry.AttrResult)
				code, _ := dp.Attributes.Value(telemetry.AttrKRBCode)
				got[stage.AsString()+"/"+result.AsString()+"/"+code.AsString()] += dp.Value
			}
		}
	}
	for _, want := range []string{"as-req/preauth_required/25", "as-req/ok/0", "s4u2self/krb_error/6"} {
		if got[want] == 0 {
			t.Errorf("no %s exchange counted; got %v", want, got)
		}
	}
	if n := got["as-req/krb_error/25"]; n != 0 {
		t.Errorf("%d PREAUTH_REQUIRED round trips counted as krb_error; got %v", n, got)
	}
}

// TestSessionKeyEtypeRefusalReachesTheCaller: a KDC that answers S4U2Self
// with an RC4 session key the gateway did not offer (s4u.SessionKeyError)
// is a setup problem on the DC: the ticket role answers FailedPrecondition
// with the stage and the fix (krbhint.SessionKeyEtype) in the
// KDCErrorDetail the edge logs, as it does for a KDC error code, not an
// opaque Internal.
func TestSessionKeyEtypeRefusalReachesTheCaller(t *testing.T) {
	cfg := fakeRealmConfig()
	cfg.TGSSessionEtype = etypeID.RC4_HMAC
	k := kdctest.Start(t, cfg)
	c := config.Default()
	svc, err := New(role.Deps{Config: &c}, WithConfig(testConfig(k.Addr())))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	_, _, err = svc.Ticket(context.Background(), "alice@lab.test", "")
	d := DetailOf(err)
	if status.Code(err) != codes.FailedPrecondition || d == nil || d.GetStage() != "s4u2self" ||
		!strings.Contains(d.GetHint(), "msDS-SupportedEncryptionTypes") || !strings.Contains(d.GetHint(), "svc_seg") {
		t.Fatalf("Ticket: %v (code %s), detail %+v; want FailedPrecondition with the stage and the fix on the DC", err, status.Code(err), d)
	}
}
