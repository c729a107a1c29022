package suite

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/pkg/rpc"
)

// TestSplitServerSurvivesAPanickingHandler: the server that serves this
// process's roles to other segmesh processes (segmesh.grpc.listen) answers
// a call whose handler panics with codes.Internal, without the panic value,
// and keeps serving (pkg/role's TestGroupSurvivesAPanickingHandler shows
// the in-process server, the log and the counter).
func TestSplitServerSurvivesAPanickingHandler(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Segmesh.GRPC.Listen = lis.Addr().String()
	o := &role.GroupOptions{Config: &cfg, Logger: slog.New(slog.DiscardHandler)}
	if err := splitMode(&cfg, o.Logger, o, lis); err != nil {
		t.Fatal(err)
	}
	const method = "/segmesh.test.v1.Panicky/Boom"
	o.ExternalServer.RegisterService(&grpc.ServiceDesc{
		ServiceName: "segmesh.test.v1.Panicky",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Boom", Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			h := func(context.Context, any) (any, error) { panic("alice@lab.test's reply") }
			if ic == nil {
				return h(ctx, nil)
			}
			return ic(ctx, new(emptypb.Empty), &grpc.UnaryServerInfo{Server: srv, FullMethod: method}, h)
		}}},
	}, struct{}{})
	go func() { _ = o.ExternalServer.Serve(o.ExternalListener) }()
	t.Cleanup(o.ExternalServer.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), append(rpc.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	for i := range 2 { // the second call shows the process still serves
		err := conn.Invoke(context.Background(), method, &emptypb.Empty{}, &emptypb.Empty{})
		if st, _ := status.FromError(err); st.Code() != codes.Internal || strings.Contains(st.Message(), "alice") {
			t.Fatalf("call %d answered %v, want codes.Internal without the panic value", i+1, err)
		}
	}
}
