"""Mutual TLS between the agents and the controller's RPC endpoint (standard library only).

Both sides hold a certificate and key signed by one CA and trust only that CA. The server
requires a client certificate; the client checks the server's name (its certificate must
carry the address or DNS name the agent connects to as a subjectAltName). TLS 1.3 only, no
session tickets (every connection is long-lived), no renegotiation.
"""

from __future__ import annotations

import dataclasses
import ssl
from typing import Any


class TlsConfigError(ValueError):
    """TLS options that cannot work (some set but not all, unreadable or mismatched files)."""


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    cert_file: str
    key_file: str
    ca_file: str

    @classmethod
    def from_options(cls, cert_file: str, key_file: str, ca_file: str,
                     prefix: str) -> TlsFiles | None:
        """None when no option is set; an error naming the options when only some are."""
        values = {"cert_file": cert_file or "", "key_file": key_file or "",
                  "ca_file": ca_file or ""}
        if not any(values.values()):
            return None
        missing = [f"{prefix}{name}" for name, value in values.items() if not value]
        if missing:
            raise TlsConfigError(f"TLS needs {prefix}cert_file, {prefix}key_file and "
                                 f"{prefix}ca_file together; missing: {', '.join(missing)}")
        return cls(**values)


def _base_context(purpose: int, files: TlsFiles,
                  context_class: type[ssl.SSLContext] = ssl.SSLContext) -> ssl.SSLContext:
    context = context_class(purpose)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.options |= ssl.OP_NO_RENEGOTIATION
    try:
        context.load_cert_chain(files.cert_file, files.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"cannot load certificate {files.cert_file} with key "
                             f"{files.key_file}: {exc}") from exc
    try:
        context.load_verify_locations(cafile=files.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"cannot load CA certificate {files.ca_file}: {exc}") from exc
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def server_context(files: TlsFiles,
                   context_class: type[ssl.SSLContext] = ssl.SSLContext) -> ssl.SSLContext:
    """The controller's side: its own certificate, and client certificates required.
    ``context_class``: eventlet's green context for a server on the eventlet hub."""
    context = _base_context(ssl.PROTOCOL_TLS_SERVER, files, context_class)
    context.num_tickets = 0
    return context


def client_context(files: TlsFiles) -> ssl.SSLContext:
    """An agent's side: its certificate, and the controller's checked against the CA and
    the name connected to."""
    context = _base_context(ssl.PROTOCOL_TLS_CLIENT, files)
    context.check_hostname = True
    return context


def peer_identities(cert: dict[str, Any] | None) -> frozenset[str]:
    """The names a verified peer certificate vouches for: its subject's commonName and its
    subjectAltName DNS entries (from :meth:`ssl.SSLSocket.getpeercert`)."""
    if not cert:
        return frozenset()
    names: set[str] = set()
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName" and isinstance(value, str):
                names.add(value)
    for kind, value in cert.get("subjectAltName", ()):
        if kind == "DNS" and isinstance(value, str):
            names.add(value)
    return frozenset(names)
