"""A throwaway certificate authority for tests, made with the ``openssl`` command line.

    pki = TestPki(tmp_path / "pki")
    server = pki.issue("controller", ips=["127.0.0.1"])      # the RPC endpoint's files
    agent = pki.issue("host-1")                                # CN and DNS SAN host-1

Every :meth:`TestPki.issue` returns :class:`ryu_sched.shared.tls.TlsFiles` (certificate, key,
and this CA), ready for the ``rpc_tls_*`` / ``tls_*`` options or for
``ryu_sched.shared.tls.client_context``. Keys are P-256, certificates valid for two days.
The README's "Certificates" section gives the same commands for real deployments.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from ryu_sched.shared.tls import TlsFiles

CURVE = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
DAYS = "2"


class OpensslMissing(RuntimeError):
    pass


def _openssl(*args: str, cwd: Path) -> None:
    if shutil.which("openssl") is None:
        raise OpensslMissing("the openssl command line tool is needed to make test "
                             "certificates")
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{result.stderr}")


class TestPki:
    __test__ = False   # not a pytest test class

    def __init__(self, directory: Path, name: str = "ryu-sched test CA") -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.ca_cert = self.dir / "ca.pem"
        self.ca_key = self.dir / "ca.key"
        _openssl("req", "-x509", *CURVE, "-keyout", str(self.ca_key), "-out",
                 str(self.ca_cert), "-days", DAYS, "-subj", f"/CN={name}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=self.dir)
        os.chmod(self.ca_key, 0o600)

    def issue(self, common_name: str, dns: Sequence[str] | None = None,
              ips: Sequence[str] = (), file_name: str | None = None) -> TlsFiles:
        """A certificate for ``common_name`` with DNS subjectAltNames ``dns`` (default: the
        common name) and IP subjectAltNames ``ips``, usable by servers and clients."""
        stem = file_name or common_name.replace("/", "_")
        key, csr, cert = (self.dir / f"{stem}.key", self.dir / f"{stem}.csr",
                          self.dir / f"{stem}.pem")
        names = [f"DNS:{d}" for d in (dns if dns is not None else [common_name])]
        names += [f"IP:{ip}" for ip in ips]
        ext = self.dir / f"{stem}.ext"
        lines = ["basicConstraints=critical,CA:FALSE",
                 "keyUsage=critical,digitalSignature",
                 "extendedKeyUsage=serverAuth,clientAuth"]
        if names:
            lines.append("subjectAltName=" + ",".join(names))
        ext.write_text("\n".join(lines) + "\n")
        _openssl("req", *CURVE, "-keyout", str(key), "-out", str(csr),
                 "-subj", f"/CN={common_name}", cwd=self.dir)
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.ca_cert), "-CAkey",
                 str(self.ca_key), "-CAcreateserial", "-out", str(cert), "-days", DAYS,
                 "-extfile", str(ext), cwd=self.dir)
        os.chmod(key, 0o600)
        return TlsFiles(cert_file=str(cert), key_file=str(key), ca_file=str(self.ca_cert))
