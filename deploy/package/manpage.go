package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"strings"

	"github.com/segmesh/segmesh/internal/cli"
)

// manPage writes segmesh(8) in roff from the CLI's own help: the usage
// text of `segmesh help` gives the synopsis and the commands, and each
// command's `-h` output its section, so the page cannot drift from the
// binary. Written by hand (about fifty lines) rather than with a man-page
// library, which would need the help text as structured flags the CLI
// does not expose.
func manPage(version string) []byte {
	usage := help("help")
	var b strings.Builder
	fmt.Fprintf(&b, ".TH SEGMESH 8 \"\" \"segmesh %s\" \"System Administration\"\n", roff(version))
	b.WriteString(".SH NAME\nsegmesh \\- Kerberos Constrained Delegation email gateway\n")
	b.WriteString(".SH SYNOPSIS\n.nf\n")
	var commands [][]string
	for _, l := range strings.Split(usage, "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "segmesh ") {
			continue
		}
		b.WriteString(roff(l) + "\n")
		commands = append(commands, commandWords(strings.Fields(l)[1:]))
	}
	b.WriteString(".fi\n.SH DESCRIPTION\n")
	first, _, _ := strings.Cut(usage, "\n")
	b.WriteString(roff(strings.TrimPrefix(first, "segmesh — ")) + ".\n")
	b.WriteString(".PP\nThe package runs `segmesh run` as the systemd service segmesh.service under the user segmesh; " +
		"SIGTERM drains in-flight requests, SIGHUP (systemctl reload segmesh) reloads config.json (also reloaded on change); what cannot change live is named on /status.\n")
	b.WriteString(".SH COMMANDS\n")
	for _, c := range commands {
		fmt.Fprintf(&b, ".SS %s\n.nf\n%s\n.fi\n", roff(strings.Join(c, " ")), roff(strings.TrimSpace(help(append(c, "-h")...))))
	}
	b.WriteString(`.SH FILES
.TP
/etc/segmesh/config.json
the configuration (SEG V2's keys plus the segmesh section), written by ` + "`segmesh config init`" + ` on first install and explained in config.json.md beside it
.TP
/etc/segmesh/config.key
the key encrypting the ` + "`.plaintext`" + ` secrets of config.json
.TP
/etc/segmesh/crl-cache
the last good CRLs (segmesh.crl.stateDir)
.SH SEE ALSO
systemctl(1), journalctl(1), /usr/share/doc/segmesh/README.md, /usr/share/doc/segmesh/operations.md
`)
	return []byte(b.String())
}

// gz compresses data as Debian wants man pages and changelogs (maximum
// compression, no name or time in the header).
func gz(data []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(data)
	_ = zw.Close()
	return buf.Bytes()
}

// help returns what `segmesh args...` prints.
func help(args ...string) string {
	var out bytes.Buffer
	cli.Main(context.Background(), args, &out, &out)
	return out.String()
}

// commandWords returns the command of a synopsis line's words after
// "segmesh": up to the first flag or argument.
func commandWords(w []string) []string {
	var out []string
	for _, x := range w {
		if strings.ContainsAny(x, "[-<|.") || x != strings.ToLower(x) {
			break
		}
		out = append(out, x)
	}
	return out
}

// roff escapes text for roff: backslashes, and a leading dot or quote.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	var b strings.Builder
	for i, l := range strings.Split(s, "\n") {
		if i > 0 {
			b.WriteByte('\n')
		}
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			b.WriteString(`\&`)
		}
		b.WriteString(strings.ReplaceAll(l, "-", `\-`))
	}
	return b.String()
}
