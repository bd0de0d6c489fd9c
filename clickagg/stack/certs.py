"""The secure stack's own certificate authority and the server certificate it signs (openssl; nothing downloaded).

`stack up --secure` keeps them under `<stack dir>/secure/`: `ca.crt` (what clients trust), `ca.key`,
`server.crt` (localhost, 127.0.0.1 and ::1), `server.key`, and `server.pem` (key + certificate chain, the
PEM keystore of Kafka's SASL_SSL listener). Keys are 0600. A server certificate that is missing, expires
within 30 days or does not chain to the CA is issued again; the CA lasts ten years.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from clickagg.stack.fetch import require_tool
from clickagg.stack.layout import StackError

CA_DAYS = 3650
SERVER_DAYS = 825
RENEW_BEFORE_S = 30 * 24 * 3600
SERVER_NAMES = ("DNS:localhost", "IP:127.0.0.1", "IP:0:0:0:0:0:0:0:1")


@dataclass(frozen=True)
class Certificates:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    server_pem: Path  # server key + server certificate + CA certificate, for Kafka's PEM keystore


def paths(secure_dir: Path) -> Certificates:
    return Certificates(
        ca_cert=secure_dir / "ca.crt",
        ca_key=secure_dir / "ca.key",
        server_cert=secure_dir / "server.crt",
        server_key=secure_dir / "server.key",
        server_pem=secure_dir / "server.pem",
    )


def _openssl(args: list[str], log: Path, what: str) -> subprocess.CompletedProcess[bytes]:
    openssl = require_tool("openssl", "install OpenSSL (e.g. `apt-get install openssl`)")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.run([openssl, *args], stdout=subprocess.PIPE, stderr=out, check=False)
    if proc.returncode != 0:
        raise StackError(f"openssl failed to {what}; see {log}")
    return proc


def _succeeds(args: list[str]) -> bool:
    openssl = require_tool("openssl", "install OpenSSL (e.g. `apt-get install openssl`)")
    return subprocess.run([openssl, *args], capture_output=True, check=False).returncode == 0


def _lasts(cert: Path) -> bool:
    return cert.exists() and _succeeds(["x509", "-checkend", str(RENEW_BEFORE_S), "-noout", "-in", str(cert)])


def _valid(certs: Certificates) -> bool:
    """The server certificate exists, chains to our CA, and both are good for 30 more days."""
    if not all(p.exists() for p in (certs.ca_key, certs.server_key, certs.server_pem)):
        return False
    return (
        _lasts(certs.ca_cert)
        and _lasts(certs.server_cert)
        and _succeeds(["verify", "-CAfile", str(certs.ca_cert), str(certs.server_cert)])
    )


def ensure(secure_dir: Path, log: Path) -> Certificates:
    """Create the CA (once) and a server certificate signed by it (again when due); returns the paths."""
    certs = paths(secure_dir)
    if _valid(certs):
        return certs
    secure_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(secure_dir, 0o700)
    old_umask = os.umask(0o077)
    try:
        if not (_lasts(certs.ca_cert) and certs.ca_key.exists()):
            _openssl(
                ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", str(certs.ca_key), "-out", str(certs.ca_cert), "-days", str(CA_DAYS),
                 "-subj", "/O=clickagg local stack/CN=clickagg local stack CA",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
                log, "create the stack's certificate authority",
            )  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="clickagg-certs-", dir=secure_dir) as tmp:
            csr = Path(tmp) / "server.csr"
            ext = Path(tmp) / "server.ext"
            ext.write_text(
                "basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n"
                f"subjectAltName={','.join(SERVER_NAMES)}\n"
                "subjectKeyIdentifier=hash\n"
                "authorityKeyIdentifier=keyid,issuer\n"
            )
            _openssl(
                ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", str(certs.server_key), "-out", str(csr),
                 "-subj", "/O=clickagg local stack/CN=localhost"],
                log, "create the server key",
            )  # fmt: skip
            serial = "0x" + os.urandom(16).hex()
            _openssl(
                ["x509", "-req", "-in", str(csr), "-CA", str(certs.ca_cert), "-CAkey", str(certs.ca_key),
                 "-set_serial", serial, "-days", str(SERVER_DAYS), "-sha256", "-extfile", str(ext),
                 "-out", str(certs.server_cert)],
                log, "sign the server certificate",
            )  # fmt: skip
        # Kafka's PEM keystore: a PKCS#8 private key, then the certificate chain.
        certs.server_pem.write_text(
            certs.server_key.read_text() + certs.server_cert.read_text() + certs.ca_cert.read_text()
        )
    finally:
        os.umask(old_umask)
    for key in (certs.ca_key, certs.server_key, certs.server_pem):
        os.chmod(key, 0o600)
    for cert in (certs.ca_cert, certs.server_cert):
        os.chmod(cert, 0o644)
    return certs
