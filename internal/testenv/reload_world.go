package testenv

import (
	"crypto/x509"
	"path/filepath"

	"github.com/segmesh/segmesh/pkg/certmap/ldaptest"
)

// Directory is a second directory for the certificate mapping, holding the
// service account's bind and the base DN, as a new domain controller or
// Global Catalog an admin moves cert.mapping.ldap.url to.
type Directory struct{ srv *ldaptest.Server }

// NewDirectory starts another directory beside the site's.
func (e *Env) NewDirectory() *Directory {
	e.t.Helper()
	srv := ldaptest.New(e.t, ldaptest.Options{RootDSE: map[string]string{"defaultNamingContext": baseDN}})
	srv.AddBind("CN="+ServiceAccount+",CN=Users,"+baseDN, ServicePassword)
	srv.Add(ldaptest.Entry{DN: baseDN, Attrs: map[string][][]byte{"objectClass": {[]byte("top"), []byte("domain")}}})
	return &Directory{srv: srv}
}

// URL is the directory's cert.mapping.ldap.url.
func (d *Directory) URL() string { return "ldap://" + d.srv.Addr() + "/" + baseDN }

// Publish puts dev's certificate on the user name of this directory.
func (d *Directory) Publish(dev Device, name string) {
	d.srv.Add(ldaptest.User("CN="+name+",CN=Users,"+baseDN, name, name+"@test.realm", dev.Leaf.Raw))
}

// RotateServerCertificate issues the edge a new certificate from the same
// CA and writes it and its key over the files config.json names, as a
// renewal in place does; it returns the new certificate.
func (e *Env) RotateServerCertificate() *x509.Certificate {
	e.t.Helper()
	c := e.w.serverCA.Server(e.t, []string{"127.0.0.1", "seg.test.realm"})
	certFile, _ := c.WriteFiles(e.t, e.dir, "edge")
	if certFile != filepath.Join(e.dir, "edge.pem") {
		e.t.Fatalf("the server certificate moved to %s", certFile)
	}
	return c.Cert
}
