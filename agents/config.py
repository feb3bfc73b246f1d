"""Agent configuration (oslo.config, ``--config-file``), group ``[agent]``."""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Sequence

from oslo_config import cfg

from ryu_sched.shared.tls import TlsConfigError, TlsFiles, client_context

DEFAULT_OVS_RUNDIR = "/var/run/openvswitch"

OPTS = [
    cfg.StrOpt("host", default=socket.gethostname(),
               help="Name of this host, as the registry knows it."),
    cfg.StrOpt("bridge", default="br-int", help="The OVS bridge the controller programs."),
    cfg.StrOpt("ovsdb", default="unix:/var/run/openvswitch/db.sock",
               help="ovsdb-server of the local Open vSwitch."),
    cfg.HostAddressOpt("controller_host", default="127.0.0.1",
                       help="Address of the controller's agent RPC endpoint."),
    cfg.PortOpt("controller_port", default=9697, help="Port of the agent RPC endpoint."),
    cfg.ListOpt("controller_hosts", default=[],
                help="Several controllers (on one PostgreSQL database): their agent RPC "
                     "endpoints as host:port (host alone: controller_port), e.g. "
                     "10.0.0.1:9697,10.0.0.2:9697,[fd00::3]:9697. The agent talks to one "
                     "and moves to the next when it dies or stops answering. Empty: "
                     "controller_host:controller_port alone."),
    cfg.StrOpt("tls_cert_file", default="",
               help="PEM certificate of this agent, signed by tls_ca_file's CA; with "
                    "tls_key_file and tls_ca_file, the connection to the controller is "
                    "mutual TLS. The controller may check that the certificate names the "
                    "host the agent reports (commonName or a DNS subjectAltName)."),
    cfg.StrOpt("tls_key_file", default="", help="PEM private key of tls_cert_file."),
    cfg.StrOpt("tls_ca_file", default="",
               help="PEM certificate of the CA that signed the controller's certificate."),
    cfg.StrOpt("tls_server_name", default="",
               help="Name the controller's certificate must carry (a DNS or IP "
                    "subjectAltName). Default: controller_host."),
    cfg.FloatOpt("report_interval", default=5.0, help="Seconds between heartbeats."),
    cfg.FloatOpt("resync_interval", default=30.0,
                 help="Seconds between full resyncs when nothing was notified."),
    cfg.StrOpt("availability_zone", default="nova"),
    cfg.StrOpt("state_path", default="/var/lib/ryu-sched-agent",
               help="Directory for per-network files (dnsmasq configuration, leases)."),
    cfg.StrOpt("namespace_prefix", default="",
               help="Prefix of the namespaces this agent creates (several agents on one "
                    "machine need different prefixes)."),
    cfg.StrOpt("external_port", default="ext0",
               help="L3 agent: OVS port name of the external uplink on the bridge."),
    cfg.FloatOpt("fence_interval", default=0.1, min=0.01,
                 help="L3 agent: seconds between two gateway_keepalive requests to the "
                      "leading controller (each answered one renews the gateway lease)."),
    cfg.FloatOpt("fence_timeout", default=0.4, min=0.0,
                 help="L3 agent: a gateway lease lasts this long from the moment the "
                      "keepalive that renewed it was sent. When it runs out the agent deletes "
                      "every ROUTER_ACTIVE flow from its bridge (the fence), so that a gateway "
                      "cut off from the controller stops answering for its routers before "
                      "another one takes over. Must be below the controllers' fence_timeout "
                      "(the same value by default). 0 disables the lease and the fence."),
    cfg.StrOpt("ovs_rundir", default="",
               help="Directory of the local Open vSwitch's sockets, where the bridge's "
                    "<bridge>.mgmt socket is (the fence talks to it with ovs-ofctl). Default: "
                    "the directory of the ovsdb unix socket, else /var/run/openvswitch."),
    cfg.StrOpt("dnsmasq", default="dnsmasq", help="DHCP agent: the dnsmasq binary."),
    cfg.StrOpt("dnsmasq_user", default="",
               help="DHCP agent: the user dnsmasq runs as after start-up (empty: dnsmasq's "
                    "default, or root when state_path is not reachable by other users)."),
    cfg.IntOpt("dhcp_lease_time", default=86400, help="DHCP agent: lease time in seconds."),
]


@dataclasses.dataclass(frozen=True)
class AgentSettings:
    host: str
    bridge: str
    ovsdb: str
    controller_host: str
    controller_port: int
    controller_hosts: tuple[str, ...]
    tls_cert_file: str
    tls_key_file: str
    tls_ca_file: str
    tls_server_name: str
    report_interval: float
    resync_interval: float
    availability_zone: str
    state_path: str
    namespace_prefix: str
    external_port: str
    fence_interval: float
    fence_timeout: float
    ovs_rundir: str
    dnsmasq: str
    dnsmasq_user: str
    dhcp_lease_time: int

    @property
    def controllers(self) -> list[tuple[str, int]]:
        """Every controller endpoint to try, in order (controller_hosts, else the one)."""
        if not self.controller_hosts:
            return [(self.controller_host, self.controller_port)]
        return [parse_endpoint(entry, self.controller_port) for entry in self.controller_hosts]

    @property
    def ovs_socket_dir(self) -> str:
        """Where the bridge's management socket is: ``ovs_rundir``, else the directory of
        the ovsdb unix socket (Open vSwitch keeps both in its rundir), else the default."""
        if self.ovs_rundir:
            return self.ovs_rundir
        if self.ovsdb.startswith("unix:"):
            return os.path.dirname(self.ovsdb[len("unix:"):]) or "."
        return DEFAULT_OVS_RUNDIR

    @property
    def tls(self) -> TlsFiles | None:
        """The TLS files when TLS is configured (all three options), else None."""
        return TlsFiles.from_options(self.tls_cert_file, self.tls_key_file, self.tls_ca_file,
                                     prefix="tls_")


def parse_endpoint(entry: str, default_port: int) -> tuple[str, int]:
    """``host:port``, ``host``, ``[v6]:port`` or ``[v6]`` -> ``(host, port)``."""
    text = entry.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise ValueError(f"bad controller endpoint {entry!r}")
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""          # a bare name, or a bare IPv6 address
    if not host:
        raise ValueError(f"bad controller endpoint {entry!r}")
    try:
        number = int(port) if port else default_port
    except ValueError:
        raise ValueError(f"bad port in controller endpoint {entry!r}") from None
    if not 0 < number < 65536:
        raise ValueError(f"bad port in controller endpoint {entry!r}")
    return host, number


def load_settings(argv: Sequence[str] | None = None, prog: str = "ryu-sched-agent"
                  ) -> AgentSettings:
    conf = cfg.ConfigOpts()
    conf.register_opts(OPTS, group="agent")
    conf.register_cli_opts(OPTS, group="agent")
    conf(args=list(argv) if argv is not None else None, project="ryu-sched", prog=prog)
    group = conf.agent
    values = {opt.dest: getattr(group, opt.dest) for opt in OPTS}
    values["controller_hosts"] = tuple(h.strip() for h in values["controller_hosts"]
                                       if h.strip())
    settings = AgentSettings(**values)
    try:
        settings.controllers     # noqa: B018 (a bad endpoint: say so now)
    except ValueError as exc:
        raise SystemExit(f"{prog}: [agent] controller_hosts: {exc}") from exc
    try:
        files = settings.tls
        if files is not None:
            client_context(files)   # unreadable or mismatched files: say so now
    except TlsConfigError as exc:
        raise SystemExit(f"{prog}: [agent] {exc}") from exc
    return settings
