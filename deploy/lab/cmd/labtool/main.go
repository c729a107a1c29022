package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if os.Getenv("GATEWAY_INTERFACE") != "" {
		if err := serveCGI(os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "labtool cgi:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "labtool:", err)
		os.Exit(1)
	}
}

// errUsage reports a command line labtool does not understand.
var errUsage = errors.New("usage: labtool pki|crl|revoke|ldif|fwd|serve [flags]")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "PKI directory")
	switch args[0] {
	case "pki":
		users := fs.Int("users", 200, "number of generated users (user0001...)")
		pass := fs.String("pfx-password-file", "", "file holding the PFX password")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		pw, err := readSecret(*pass)
		if err != nil {
			return err
		}
		p := &pki{dir: *dir, now: time.Now, pfxPassword: pw, log: log}
		return p.build(*users)
	case "crl":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		p := &pki{dir: *dir, now: time.Now, log: log}
		return p.issueAllCRLs()
	case "revoke":
		certPath := fs.String("cert", "", "PEM certificate to revoke")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		p := &pki{dir: *dir, now: time.Now, log: log}
		serial, ca, err := p.revoke(*certPath)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "SERIAL=%s\nCA=%s\n", serial, ca)
		return nil
	case "ldif":
		users := fs.Int("users", 200, "number of generated users")
		from := fs.Int("from", 1, "first generated user number")
		named := fs.Bool("named", true, "include the named accounts")
		userPass := fs.String("user-password-file", "", "file holding the users' password")
		svcPass := fs.String("svc-password-file", "", "file holding svc_seg's password")
		machPass := fs.String("machine-password-file", "", "file holding the computer accounts' password")
		variants := fs.Bool("variants", false, "print only the delegation variant accounts (svc_rbcd, svc_nodeleg, svc_konly, grace)")
		policy := fs.Bool("policy", false, "print only the authentication policy accounts (svc_denied, svc_armor, seggw$)")
		genPass := fs.Bool("generated-passwords", false, "give generated users the users' password (slow: ~25 ms each in Samba)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		pw := map[string]string{}
		for k, f := range map[string]string{"user": *userPass, "svc": *svcPass, "machine": *machPass} {
			s, err := readSecret(f)
			if err != nil {
				return err
			}
			pw[k] = s
		}
		return writeLDIF(stdout, ldifOptions{
			pkiDir: *dir, named: *named, from: *from, to: *users,
			userPassword: pw["user"], svcPassword: pw["svc"], machinePassword: pw["machine"],
			generatedPassword: map[bool]string{true: pw["user"]}[*genPass], variants: *variants,
			policy: *policy,
		})
	case "fwd":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return forward(ctx, log, fs.Args())
	case "serve":
		addr := fs.String("addr", "127.0.0.4:80", "listen address")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return serveDir(ctx, log, *addr, *dir)
	}
	return errUsage
}

func readSecret(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read secret: %w", err)
	}
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return string(b), nil
}
