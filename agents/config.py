"""Agent configuration (oslo.config, ``--config-file``), group ``[agent]``."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Sequence

from oslo_config import cfg

from ryu_sched.shared.tls import TlsConfigError, TlsFiles, client_context

OPTS = [
    cfg.StrOpt("host", default=socket.gethostname(),
               help="Name of this host, as the registry knows it."),
    cfg.StrOpt("bridge", default="br-int", help="The OVS bridge the controller programs."),
    cfg.StrOpt("ovsdb", default="unix:/var/run/openvswitch/db.sock",
               help="ovsdb-server of the local Open vSwitch."),
    cfg.HostAddressOpt("controller_host", default="127.0.0.1",
                       help="Address of the controller's agent RPC endpoint."),
    cfg.PortOpt("controller_port", default=9697, help="Port of the agent RPC endpoint."),
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
    dnsmasq: str
    dnsmasq_user: str
    dhcp_lease_time: int

    @property
    def tls(self) -> TlsFiles | None:
        """The TLS files when TLS is configured (all three options), else None."""
        return TlsFiles.from_options(self.tls_cert_file, self.tls_key_file, self.tls_ca_file,
                                     prefix="tls_")


def load_settings(argv: Sequence[str] | None = None, prog: str = "ryu-sched-agent"
                  ) -> AgentSettings:
    conf = cfg.ConfigOpts()
    conf.register_opts(OPTS, group="agent")
    conf.register_cli_opts(OPTS, group="agent")
    conf(args=list(argv) if argv is not None else None, project="ryu-sched", prog=prog)
    group = conf.agent
    settings = AgentSettings(**{opt.dest: getattr(group, opt.dest) for opt in OPTS})
    try:
        files = settings.tls
        if files is not None:
            client_context(files)   # unreadable or mismatched files: say so now
    except TlsConfigError as exc:
        raise SystemExit(f"{prog}: [agent] {exc}") from exc
    return settings
