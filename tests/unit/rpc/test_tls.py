"""Mutual TLS pieces: the options, the contexts, and the peer's names on the connection."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import eventlet
import eventlet.green.ssl
import pytest

from ryu_sched.agents.config import load_settings
from ryu_sched.config import RpcConfigError, Settings, check_rpc_settings, is_loopback
from ryu_sched.rpc import Dispatcher, RpcServer
from ryu_sched.shared.client import RpcClient
from ryu_sched.shared.tls import (
    TlsConfigError,
    TlsFiles,
    client_context,
    peer_identities,
    server_context,
)
from ryu_sched.shared.wire import Disconnected
from tests.support.certs import TestPki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki(tmp_path_factory.mktemp("pki"))


def _run_hub_until(thread: threading.Thread, timeout: float = 10.0) -> None:
    """Let the eventlet hub (this thread) serve while ``thread`` runs a blocking client."""
    deadline = time.monotonic() + timeout
    while thread.is_alive() and time.monotonic() < deadline:
        eventlet.sleep(0.01)
    assert not thread.is_alive(), "client thread still running"


def _tls_server(files: TlsFiles) -> RpcServer:
    methods = {"ping": lambda conn, params: "pong",
               "whoami": lambda conn, params: [conn.tls, sorted(conn.peer_identities or ())]}
    server = RpcServer("127.0.0.1", 0, Dispatcher(methods), ssl_context=server_context(
        files, context_class=eventlet.green.ssl.GreenSSLContext))
    server.start()
    return server


def test_the_connection_carries_the_names_of_the_client_certificate(pki: TestPki) -> None:
    server = _tls_server(pki.issue("controller", ips=["127.0.0.1"]))
    agent = pki.issue("agent-cn", dns=["host-a.example", "host-b"], ips=["127.0.0.9"])
    result: list[object] = []

    def client() -> None:
        rpc = RpcClient("127.0.0.1", server.port, ssl_context=client_context(agent)).open(5)
        try:
            result.append(rpc.call("whoami"))
        finally:
            rpc.close()

    try:
        thread = threading.Thread(target=client, daemon=True)
        thread.start()
        _run_hub_until(thread)
        # commonName and DNS subjectAltNames; IP addresses are not identities
        assert result == [[True, ["agent-cn", "host-a.example", "host-b"]]]
    finally:
        server.stop()


def test_the_client_checks_the_name_it_connects_to(pki: TestPki) -> None:
    server = _tls_server(pki.issue("controller-x", dns=["controller.example"]))
    errors: list[BaseException] = []

    def client() -> None:
        try:   # 127.0.0.1 is not in the server's certificate
            RpcClient("127.0.0.1", server.port,
                      ssl_context=client_context(pki.issue("agent-x"))).open(5)
        except Disconnected as exc:
            errors.append(exc)

    try:
        thread = threading.Thread(target=client, daemon=True)
        thread.start()
        _run_hub_until(thread)
        assert errors and "certificate verify failed" in str(errors[0])
    finally:
        server.stop()


def test_peer_identities_of_getpeercert_dicts() -> None:
    cert = {"subject": ((("countryName", "XX"),), (("commonName", "gw1"),)),
            "subjectAltName": (("DNS", "gw1.example"), ("IP Address", "10.0.0.1"),
                               ("DNS", "gw1"))}
    assert peer_identities(cert) == frozenset({"gw1", "gw1.example"})
    assert peer_identities(None) == frozenset() == peer_identities({})


def test_tls_options_come_all_three_or_none() -> None:
    assert TlsFiles.from_options("", "", "", prefix="tls_") is None
    with pytest.raises(TlsConfigError, match="missing: tls_key_file, tls_ca_file"):
        TlsFiles.from_options("c.pem", "", "", prefix="tls_")


def test_unusable_files_are_reported(pki: TestPki, tmp_path: Path) -> None:
    good = pki.issue("files")
    other_key = pki.issue("other").key_file
    with pytest.raises(TlsConfigError, match="cannot load certificate"):
        server_context(TlsFiles(good.cert_file, other_key, good.ca_file))
    with pytest.raises(TlsConfigError, match="cannot load CA"):
        client_context(TlsFiles(good.cert_file, good.key_file, str(tmp_path / "nope.pem")))


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.3.2.1", True), ("::1", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("192.0.2.10", False), ("no-such-host.invalid", False),
])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_the_endpoint_is_not_exposed_without_tls(pki: TestPki) -> None:
    check_rpc_settings(Settings(rpc_host="127.0.0.1"))
    with pytest.raises(RpcConfigError, match="not a loopback address"):
        check_rpc_settings(Settings(rpc_host="192.0.2.10"))
    check_rpc_settings(Settings(rpc_host="192.0.2.10", rpc_allow_insecure=True))
    files = pki.issue("endpoint")
    check_rpc_settings(Settings(rpc_host="192.0.2.10", rpc_tls_cert_file=files.cert_file,
                                rpc_tls_key_file=files.key_file,
                                rpc_tls_ca_file=files.ca_file))
    with pytest.raises(RpcConfigError, match="missing: rpc_tls_ca_file"):
        check_rpc_settings(Settings(rpc_tls_cert_file=files.cert_file,
                                    rpc_tls_key_file=files.key_file))


def test_agent_tls_options(pki: TestPki, tmp_path: Path) -> None:
    files = pki.issue("gw1")
    base = ["--agent-host", "gw1", "--agent-state_path", str(tmp_path)]
    settings = load_settings([*base, "--agent-tls_cert_file", files.cert_file,
                              "--agent-tls_key_file", files.key_file,
                              "--agent-tls_ca_file", files.ca_file])
    assert settings.tls == files
    assert load_settings(base).tls is None
    with pytest.raises(SystemExit, match="missing: tls_key_file"):
        load_settings([*base, "--agent-tls_cert_file", files.cert_file,
                       "--agent-tls_ca_file", files.ca_file])
