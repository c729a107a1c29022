package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/segmesh/segmesh/internal/diagnose"
	"github.com/segmesh/segmesh/pkg/config"
)

// diagnoseCmd runs every step of the request path for one certificate with
// the live configuration (internal/diagnose) and prints each step as it
// ends, or the whole report as JSON. It fails (exit 1) when a step fails.
func diagnoseCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("diagnose", "diagnose [--config config.json] (--cert user.pem [--key user.key] [--chain chain.pem] | --upn user@corp.example) [--spn HTTP/...] [--json]",
		"Runs every step a request takes (trust, revocation, mapping, TGT, S4U2Self, S4U2Proxy, Exchange) for one device certificate, or for one user with --upn, with the live configuration, and prints each with the fix. Exit 1 when a step fails.", stderr)
	cfgPath := fs.String("config", defaultConfig, "config.json, as segmesh run reads it")
	certPath := fs.String("cert", "", "the device's client certificate (PEM or DER; more PEM blocks are intermediates)")
	keyPath := fs.String("key", "", "the certificate's private key (optional: checks that it belongs to the certificate)")
	chainPath := fs.String("chain", "", "intermediates the device sends (PEM, optional)")
	upnFlag := fs.String("upn", "", "diagnose this user without a certificate (skips certificate, trust and revocation)")
	spn := fs.String("spn", "", "target SPN (default: the first of kcd.targetSPN)")
	asJSON := fs.Bool("json", false, "print the report as JSON (schema in docs/operations.md)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Sprintf("diagnose takes no arguments, got %q (did you mean --cert %s?)", pos, pos[0])}
	}
	switch {
	case *certPath == "" && *upnFlag == "":
		return usageError{"diagnose needs --cert user.pem, or --upn user@corp.example when you have no certificate"}
	case *certPath != "" && *upnFlag != "":
		return usageError{"diagnose takes --cert or --upn, not both (the certificate names its user)"}
	}
	cfg, report, err := config.Load(*cfgPath)
	if err != nil {
		if report != nil {
			for _, p := range report.Errors() {
				_, _ = fmt.Fprintf(stderr, "  %s\n", p)
			}
			_, _ = fmt.Fprintf(stderr, "segmesh: diagnose: %s has errors; fix them first (segmesh config check %s)\n", *cfgPath, *cfgPath)
			return errReported
		}
		return err
	}
	opts := diagnose.Options{Config: cfg, SPN: *spn, UPN: *upnFlag}
	// The files are read as the gateway reads the files an admin names
	// (config.ReadFile): a FIFO or a link to /dev/zero given by mistake
	// is refused at once instead of hanging diagnose.
	for _, f := range []struct {
		flag, path string
		dst        *[]byte
	}{{"--cert", *certPath, &opts.CertPEM}, {"--key", *keyPath, &opts.KeyPEM}, {"--chain", *chainPath, &opts.ChainPEM}} {
		if f.path == "" {
			continue
		}
		b, err := config.ReadFile(f.flag, f.path, config.MaxPEMFile, "name the PEM file itself")
		if err != nil {
			return fmt.Errorf("diagnose: %w", err)
		}
		*f.dst = b
	}
	if !*asJSON {
		subject := *certPath
		if subject == "" {
			subject = "user " + *upnFlag
		}
		_, _ = fmt.Fprintf(stdout, "diagnose %s with %s\n\n", subject, cfg.Path)
		opts.Progress = func(r diagnose.StepResult) { _ = diagnose.WriteStep(stdout, r) }
		opts.Note = func(step, msg string) { _, _ = fmt.Fprintf(stdout, "  … %s: %s\n", step, msg) }
	}
	rep := diagnose.Run(ctx, opts)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("diagnose: %w", err)
		}
	} else {
		_ = diagnose.WriteSummary(stdout, rep)
	}
	if !rep.OK {
		return errReported
	}
	return nil
}
