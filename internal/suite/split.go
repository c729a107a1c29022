package suite

import (
	"fmt"
	"log/slog"
	"net"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/metric"
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
// (mTLS likewise; rendezvous hashing on the user for the ticket role).
//
// lis, when not nil, is used instead of listening on segmesh.grpc.listen.
func splitMode(cfg *config.Config, log *slog.Logger, g *role.GroupOptions, lis net.Listener) error {
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
		if lis != nil {
			_ = lis.Close()
		}
		return nil
	}
	if lis == nil {
		var err error
		if lis, err = net.Listen("tcp", gc.Listen); err != nil {
			return fmt.Errorf("listen on %s (segmesh.grpc.listen): %w", gc.Listen, err)
		}
	}
	var meter metric.Meter
	if g.MeterProvider != nil {
		meter = g.MeterProvider.Meter("segmesh/rpc")
	}
	opts := append(rpc.ServerOptions(log, meter), grpc.StatsHandler(otelgrpc.NewServerHandler()))
	opts, err := exposure(gc, files, lis, log, opts)
	if err != nil {
		_ = lis.Close()
		return err
	}
	g.ExternalServer = grpc.NewServer(opts...)
	g.ExternalListener = lis
	return nil
}

// exposure adds what guards the inter-role listener to opts: segmesh's mTLS
// and the allow-list on the certificate, or the allow-list on the mesh's
// identity header (segmesh.grpc.meshProvidesMtls), or nothing on loopback.
// It refuses plaintext on any other address, as config validation does,
// because whoever passes this listener can ask for any user's ticket.
func exposure(gc config.GRPC, files rpc.TLSFiles, lis net.Listener, log *slog.Logger, opts []grpc.ServerOption) ([]grpc.ServerOption, error) {
	addr := lis.Addr().String()
	var allow *rpc.AllowList
	switch {
	case gc.CertFile != "":
		creds, err := rpc.ServerCredentials(files)
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.Creds(creds))
		allow = rpc.NewAllowList(gc.AllowedPeers)
		log.Info("grpc listening for other segmesh processes", "addr", addr, "mtls", true, "allowed_peers", gc.AllowedPeers)
	case gc.MeshProvidesMTLS:
		allow = rpc.NewMeshAllowList(gc.AllowedPeers)
		log.Info("grpc listening for other segmesh processes", "addr", addr, "mtls", "mesh", "allowed_peers", gc.AllowedPeers)
	case config.IsLoopbackListen(addr):
		log.Warn("grpc listening without TLS on loopback: any local process can ask for tickets", "addr", addr, "fix", "set segmesh.grpc.certFile, keyFile, caFile and allowedPeers")
		return opts, nil
	default:
		return nil, fmt.Errorf("segmesh.grpc.listen %s serves plaintext on a non-loopback address: set segmesh.grpc.certFile, keyFile, caFile and allowedPeers, or segmesh.grpc.meshProvidesMtls inside a mesh with STRICT mTLS", addr)
	}
	return append(opts, grpc.ChainUnaryInterceptor(allow.UnaryInterceptor()), grpc.ChainStreamInterceptor(allow.StreamInterceptor())), nil
}
