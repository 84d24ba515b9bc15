package natsstore_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/natsstore"
	"github.com/sluicehq/sluice/store/storetest"
)

// writeCert writes a certificate signed by parent (self-signed when parent
// is nil) and its key as PEM files in dir, and returns them.
func writeCert(t *testing.T, dir, name string, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for file, block := range map[string]*pem.Block{name + ".pem": {Type: "CERTIFICATE", Bytes: der}, name + ".key": {Type: "EC PRIVATE KEY", Bytes: kder}} {
		if err := os.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// The DSN's TLS files reach a nats-server that requires TLS and verifies
// client certificates: with the CA and a client certificate the store
// opens and appends; without the client certificate, or without the CA,
// it does not.
func TestTLSFiles(t *testing.T) {
	bin := os.Getenv("SLUICE_TEST_NATS_SERVER")
	if bin == "" {
		bin = "nats-server"
	}
	dir := t.TempDir()
	now := time.Now()
	ca, caKey := writeCert(t, dir, "ca", &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sluice test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, nil, nil)
	writeCert(t, dir, "server", &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, caKey)
	writeCert(t, dir, "client", &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "sluice"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca, caKey)
	srv := storetest.StartProcess(t, bin, hang, func(port int, sdir string) []string {
		conf := fmt.Sprintf("listen: 127.0.0.1:%d\njetstream { store_dir: %q }\n"+
			"tls { cert_file: %q, key_file: %q, ca_file: %q, verify: true }\n",
			port, filepath.Join(sdir, "js"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key"), filepath.Join(dir, "ca.pem"))
		path := filepath.Join(sdir, "nats.conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		return []string{"-c", path, "-l", filepath.Join(sdir, "nats.log")}
	})
	base := "nats://127.0.0.1:" + strconv.Itoa(srv.Port) + "?stream=TLS"
	files := fmt.Sprintf("&tls_ca=%s&tls_cert=%s&tls_key=%s", filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key"))

	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	s, err := natsstore.Open(ctx, base+files, natsstore.Config{})
	if err != nil {
		t.Fatalf("Open with the CA and a client certificate: %v", err)
	}
	defer s.Close()
	if e := storetest.MustAppend(t, s, store.Event{Data: "over TLS"}); e.Pos != 1 {
		t.Fatalf("append over TLS: %+v", e)
	}
	for what, dsn := range map[string]string{
		"without the client certificate": base + "&tls_ca=" + filepath.Join(dir, "ca.pem"),
		"without the CA":                 base + fmt.Sprintf("&tls_cert=%s&tls_key=%s", filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")),
	} {
		octx, ocancel := context.WithTimeout(ctx, 5*time.Second)
		if s, err := natsstore.Open(octx, dsn, natsstore.Config{}); err == nil {
			s.Close()
			t.Errorf("Open %s succeeded", what)
		}
		ocancel()
	}
}
