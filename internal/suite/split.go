package suite

import (
	"fmt"
	"log/slog"
	"net"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/role"
	"github.com/segmesh/segmesh/pkg/rpc"
)

// splitMode sets up what talking to other segmesh processes needs: the
// gRPC listener for this process's roles (mTLS and the peer allow-list when
// segmesh.grpc.certFile is set) and the dial options for remote roles
// (mTLS likewise; ring_hash on the user for the ticket role).
func splitMode(cfg *config.Config, log *slog.Logger, g *role.GroupOptions) error {
	gc := cfg.Segmesh.GRPC
	files := rpc.TLSFiles{CertFile: cfg.Resolve(gc.CertFile), KeyFile: cfg.Resolve(gc.KeyFile), CAFile: cfg.Resolve(gc.CAFile)}
	useTLS := gc.CertFile != ""
	var clientCreds credentials.TransportCredentials = insecure.NewCredentials()
	if useTLS {
		c, err := rpc.ClientCredentials(files)
		if err != nil {
			return err
		}
		clientCreds = c
	}
	g.DialOptions = func(name, _ string) []grpc.DialOption {
		opts := []grpc.DialOption{grpc.WithTransportCredentials(clientCreds), grpc.WithStatsHandler(otelgrpc.NewClientHandler())}
		if name == role.Ticket {
			opts = append(opts, rpc.TicketDialOptions()...)
		}
		return opts
	}
	g.InternalServerOptions = append(g.InternalServerOptions, grpc.StatsHandler(otelgrpc.NewServerHandler()))
	if gc.Listen == "" {
		return nil
	}
	lis, err := net.Listen("tcp", gc.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s (segmesh.grpc.listen): %w", gc.Listen, err)
	}
	opts := []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler())}
	if useTLS {
		creds, err := rpc.ServerCredentials(files)
		if err != nil {
			_ = lis.Close()
			return err
		}
		allow := rpc.NewAllowList(gc.AllowedPeers)
		opts = append(opts, grpc.Creds(creds), grpc.ChainUnaryInterceptor(allow.UnaryInterceptor()), grpc.ChainStreamInterceptor(allow.StreamInterceptor()))
		log.Info("grpc listening for other segmesh processes", "addr", lis.Addr().String(), "mtls", true, "allowed_peers", gc.AllowedPeers)
	} else {
		log.Warn("grpc listening without TLS: use only on loopback or inside a mesh that provides mTLS", "addr", lis.Addr().String(), "fix", "set segmesh.grpc.certFile, keyFile and caFile")
	}
	g.ExternalServer = grpc.NewServer(opts...)
	g.ExternalListener = lis
	return nil
}
