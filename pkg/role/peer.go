package role

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/segmesh/segmesh/pkg/config"
	"github.com/segmesh/segmesh/pkg/rpc"
)

// NoPeerError is why Conn cannot reach the named role: it is not run in
// this process and segmesh.peers has no address for it. Validate in
// internal/suite reports the same before any role is built.
func NoPeerError(name string) error {
	return fmt.Errorf("role %s is not run in this process and segmesh.peers.%s is empty; set it to the %s role's address or add %s to --roles", name, name, name, name)
}

// CheckPeer returns what Conn would refuse for the named role when it is
// not run in this process, without connecting (grpc.NewClient reaches
// nobody before the first call): no address, or one grpc does not take as
// a target.
func CheckPeer(c *config.Config, name string) error {
	addr := PeerAddr(c, name)
	if addr == "" {
		return NoPeerError(name)
	}
	if err := userinfoError(addr); err != nil {
		return fmt.Errorf("connect to role %s: %w", name, err)
	}
	cc, err := grpc.NewClient(addr, append(rpc.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		return redactedError(fmt.Errorf("connect to role %s: %w", name, err), addr)
	}
	if err := targetError(cc); err != nil {
		_ = cc.Close()
		return redactedError(fmt.Errorf("connect to role %s: %w", name, err), addr)
	}
	return cc.Close()
}

// RedactTarget returns a segmesh.peers target with whatever stands before
// an "@" in it (user information: dns://user:password@server/name:port, or
// user:password@host:port) replaced by xxxxx, for messages, logs and
// /status. gRPC uses no user information (targetError refuses it); an
// admin who wrote a password there must not find it in every log line.
func RedactTarget(addr string) string {
	at := strings.LastIndex(addr, "@")
	if at < 0 {
		return addr
	}
	// Keep only a scheme (dns://, or dns: of dns:user:password@host): a
	// "/" or ":" elsewhere before the @ may be in the password.
	start := 0
	if i := strings.Index(addr[:at], ":"); i > 0 && validScheme(addr[:i]) {
		if strings.HasPrefix(addr[i:], "://") {
			start = i + 3
		} else if slices.Contains(grpcSchemes, addr[:i]) {
			start = i + 1
		}
	}
	return addr[:start] + "xxxxx" + addr[at:]
}

// grpcSchemes are the schemes of gRPC's built-in resolvers.
var grpcSchemes = []string{"dns", "passthrough", "unix", "unix-abstract"}

// validScheme says whether s is a URL scheme (RFC 3986: a letter, then
// letters, digits, "+", "-" or ".").
func validScheme(s string) bool {
	for i, r := range s {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !letter && (i == 0 || !(r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.')) {
			return false
		}
	}
	return s != ""
}

// userinfoError refuses a target whose authority carries user information
// (dns://user:password@server/name:port): gRPC drops it without a word
// (CanonicalTarget has none), so it is a mistake, and a password there
// would be shown wherever the target is.
func userinfoError(addr string) error {
	if u, err := url.Parse(addr); err == nil && u.User != nil {
		return fmt.Errorf("target %s names user information (before the @), which gRPC does not use: remove it", RedactTarget(addr))
	}
	return nil
}

// redactedError is err with the user information of addr (RedactTarget)
// taken out of its text; err itself when addr has none. gRPC's and url's
// errors quote the target whole.
func redactedError(err error, addr string) error {
	red := RedactTarget(addr)
	if err == nil || red == addr {
		return err
	}
	text := err.Error()
	// The target as written and as gRPC canonicalises it (dns:///...).
	for _, raw := range []string{addr, "dns:///" + addr} {
		text = strings.ReplaceAll(text, raw, RedactTarget(raw))
	}
	if at := strings.LastIndex(addr, "@"); at > 0 {
		text = strings.ReplaceAll(text, addr[:at], "xxxxx")
	}
	return errors.New(text)
}

// targetError says why the resolver of cc's target would refuse it, as
// gRPC's built-in resolvers do when the first call comes (grpc.NewClient
// takes any text and resolves nothing before): a dns target without a
// host or with a colon and no port (or a DNS server so written), a
// passthrough target that is not host:port, a unix or unix-abstract target
// with a host or without a socket. A scheme
// gRPC has no resolver for was made a dns target of the whole text
// (https://ticket:9443 becomes dns:///https://ticket:9443) and is refused
// for that. It reaches nobody.
func targetError(cc *grpc.ClientConn) error {
	target := cc.CanonicalTarget()
	u, endpoint, err := splitTarget(target)
	if err != nil {
		return fmt.Errorf("target %s: %w", target, err)
	}
	// An @ in a socket's path or abstract name is a name like any other
	// (unix:///run/a@b.sock), unless what stands before it reads as
	// user:password; in a host it is user information gRPC would look up
	// as part of the name.
	at := strings.LastIndex(endpoint, "@")
	socket := isSocket(u)
	if u.User != nil || (at >= 0 && (!socket || strings.Contains(endpoint[:at], ":"))) {
		return fmt.Errorf("target %s names user information (before the @), which gRPC does not use: remove it", RedactTarget(target))
	}
	switch u.Scheme {
	case "dns":
		if endpoint == "" {
			return fmt.Errorf("target %s names no host", target)
		}
		if u.Host != "" {
			// The DNS server to ask, host[:port], port 53 by default.
			if _, port, err := net.SplitHostPort(u.Host); err == nil && port == "" {
				return fmt.Errorf("target %s names a DNS server that ends in a colon without a port", target)
			}
		}
		if net.ParseIP(endpoint) != nil {
			return nil
		}
		if host, port, err := net.SplitHostPort(endpoint); err == nil {
			if port == "" {
				return fmt.Errorf("target %s ends in a colon without a port", target)
			}
			if strings.ContainsAny(host, "/") || strings.ContainsAny(port, "/") {
				return fmt.Errorf("target %s is not host:port (a scheme gRPC does not know is read as part of the host)", target)
			}
			return nil
		}
		if _, _, err := net.SplitHostPort(endpoint + ":443"); err != nil || strings.Contains(endpoint, "/") {
			return fmt.Errorf("target %s is not host:port (a scheme gRPC does not know is read as part of the host)", target)
		}
	case "passthrough":
		// Dialled as it is, by net.Dial: host:port.
		if host, port, err := net.SplitHostPort(endpoint); err != nil || host == "" || port == "" {
			return fmt.Errorf("target %s is not passthrough:///host:port", target)
		}
	case "unix", "unix-abstract":
		if u.Host != "" {
			return fmt.Errorf("target %s has a host; write %s:///absolute/path or %s:relative/path", target, u.Scheme, u.Scheme)
		}
		if endpoint == "" {
			return fmt.Errorf("target %s names no socket", target)
		}
	}
	return nil
}

// splitTarget parses a canonical gRPC target (scheme:[//authority]/endpoint,
// as CanonicalTarget gives it) into its URL and the endpoint its resolver
// reads: the path without its leading slash, or the opaque part
// (unix:relative/path).
func splitTarget(target string) (*url.URL, string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, "", err
	}
	endpoint := strings.TrimPrefix(u.Path, "/")
	if endpoint == "" {
		endpoint = u.Opaque
	}
	return u, endpoint, nil
}

// isSocket reports whether a target names a unix socket (a path or an
// abstract name) rather than a host.
func isSocket(u *url.URL) bool { return u.Scheme == "unix" || u.Scheme == "unix-abstract" }

// PeerAddr returns the address segmesh.peers gives the named role, the one
// Conn dials when the role is not run in this process; "" when none.
func PeerAddr(c *config.Config, name string) string {
	p := c.Segmesh.Peers
	switch name {
	case Identity:
		return p.Identity
	case Ticket:
		return p.Ticket
	case CRL:
		return p.CRL
	}
	return ""
}

// PeerEndpoint returns where a target Conn would take (host and port, as
// gRPC's resolver reads it) and whether the call stays on this machine: a
// unix socket, or a loopback host (localhost, 127.0.0.0/8, ::1) that an
// HTTPS_PROXY in the environment would not take. port is ""
// for a DNS target written without one, which gRPC dials on 443. An error is
// a target CheckPeer refuses.
func PeerEndpoint(addr string) (host, port string, local bool, err error) {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", "", false, err
	}
	defer cc.Close()
	if err := targetError(cc); err != nil {
		return "", "", false, err
	}
	u, endpoint, err := splitTarget(cc.CanonicalTarget())
	if err != nil {
		return "", "", false, err
	}
	if isSocket(u) {
		return "", "", true, nil
	}
	host = endpoint
	if h, p, err := net.SplitHostPort(endpoint); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1] // [::1] without a port, as gRPC reads it
	}
	ip := net.ParseIP(host)
	// Local as gRPC's proxy rule has it (http.ProxyFromEnvironment): only
	// "localhost" as written and loopback addresses bypass HTTPS_PROXY; with
	// a proxy set, any other spelling (LOCALHOST, localhost.) is sent to the
	// proxy, whose own localhost is then called.
	local = host == "localhost" || (ip != nil && ip.IsLoopback())
	return host, port, local, nil
}
