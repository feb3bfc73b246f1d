"""Configuration: oslo.config options in group ``[ryu_sched]`` and a plain ``Settings`` view.

The framework's own ``ConfigOpts`` (``--config-file``) is used so that one file configures both
the Ryu/os-ken manager (e.g. ``[DEFAULT] ofp_listen_host``) and ryu-sched. The core never reads
``CONF`` directly: the app turns it into a frozen :class:`Settings` once at start.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import socket
from typing import Any

from oslo_config import cfg

from ryu_sched.shared.tls import TlsConfigError, TlsFiles, server_context

GROUP = "ryu_sched"

OPTS = [
    cfg.StrOpt("state_path", default="/var/lib/ryu-sched",
               help="Directory for the default SQLite database and other state."),
    cfg.StrOpt("connection", default="",
               help="SQLAlchemy URL of the database. Default: a SQLite file in state_path."),
    cfg.HostAddressOpt("api_host", default="127.0.0.1", help="Neutron API listen address."),
    cfg.PortOpt("api_port", default=9696, help="Neutron API listen port."),
    cfg.IntOpt("api_max_request_body_size", default=114688, min=1024,
               help="Largest request body in bytes the API reads (413 above), as "
                    "oslo.middleware's max_request_body_size that Neutron uses."),
    cfg.HostAddressOpt("metrics_host", default="127.0.0.1",
                       help="Prometheus metrics (/metrics) listen address."),
    cfg.PortOpt("metrics_port", default=9698, help="Prometheus metrics listen port."),
    cfg.HostAddressOpt("rpc_host", default="127.0.0.1", help="Agent RPC listen address."),
    cfg.PortOpt("rpc_port", default=9697, help="Agent RPC (MessagePack-RPC) listen port."),
    # agent RPC endpoint: mutual TLS
    cfg.StrOpt("rpc_tls_cert_file", default="",
               help="PEM certificate of the agent endpoint. With rpc_tls_key_file and "
                    "rpc_tls_ca_file the endpoint speaks only mutual TLS: every agent must "
                    "present a certificate signed by that CA."),
    cfg.StrOpt("rpc_tls_key_file", default="", help="PEM private key of rpc_tls_cert_file."),
    cfg.StrOpt("rpc_tls_ca_file", default="",
               help="PEM certificate(s) of the CA that signs the agents' certificates."),
    cfg.BoolOpt("rpc_allow_insecure", default=False,
                help="Allow rpc_host on a non-loopback address without TLS (anyone who "
                     "reaches it can register agents and read every port)."),
    # agent RPC endpoint: resource limits
    cfg.IntOpt("rpc_max_connections", default=4096, min=1,
               help="Open agent connections at most; more are accepted and closed at once. "
                    "Lowered at start to leave a quarter of the file descriptor limit "
                    "(at least 64) to everything else."),
    cfg.IntOpt("rpc_max_connections_per_peer", default=256, min=1,
               help="Open agent connections at most from one peer address."),
    cfg.FloatOpt("rpc_idle_timeout", default=60.0, min=1.0,
                 help="Seconds without any byte from an agent after which its connection is "
                      "closed (agents heartbeat every report_interval)."),
    cfg.FloatOpt("rpc_read_timeout", default=10.0, min=0.1,
                 help="Seconds a started frame (or the TLS handshake) may take to arrive."),
    cfg.FloatOpt("rpc_write_timeout", default=10.0, min=0.1,
                 help="Seconds queued replies may wait for an agent that does not read; "
                      "then its connection is closed."),
    cfg.IntOpt("rpc_max_inflight", default=32, min=1,
               help="Replies per connection waiting to be sent; while that many wait, the "
                    "connection's further requests are not read."),
    cfg.IntOpt("rpc_max_queued_bytes", default=32 * 1024 * 1024, min=65536,
               help="Bytes of replies and notifications queued for one connection; beyond "
                    "it the connection is closed (its agent resyncs on reconnect)."),
    cfg.IntOpt("rpc_max_frame_size", default=1024 * 1024, min=1024,
               help="Largest frame an agent may send, in bytes; a larger one closes its "
                    "connection."),
    cfg.StrOpt("auth_strategy", default="noauth", choices=["noauth", "token", "keystone"],
               help="keystone: tokens validated by keystonemiddleware's auth_token, "
                    "configured in [keystone_authtoken]. token: X-Auth-Token looked up in "
                    "token_file (tests, labs without Keystone). noauth: every request is "
                    "admin (labs)."),
    cfg.StrOpt("token_file", default="",
               help="JSON file mapping tokens to {project_id, role} (auth_strategy=token); "
                    "role: admin, member or reader."),
    cfg.ListOpt("network_vlan_ranges", default=["physnet1:100:3999"],
                help="physnet:vlan_min:vlan_max ranges for tenant networks."),
    cfg.ListOpt("bridge_mappings", default=["physnet1:uplink"],
                help="physnet:port_name of the uplink carrying that physnet on every bridge."),
    cfg.IntOpt("global_physnet_mtu", default=1500, help="MTU of tenant networks."),
    cfg.IntOpt("max_routes", default=30, min=0,
               help="Extra routes a router may have (Neutron's max_routes)."),
    # registry and scheduler
    cfg.IntOpt("agent_down_time", default=15, min=1,
               help="Seconds without a heartbeat after which an agent is dead "
                    "(three missed heartbeats of the default report_interval 5)."),
    cfg.FloatOpt("monitor_interval", default=0.0,
                 help="Seconds between liveness checks; 0 means agent_down_time / 3."),
    cfg.FloatOpt("heartbeat_flush_interval", default=1.0,
                 help="Seconds between batched writes of heartbeat times to the database."),
    cfg.BoolOpt("allow_automatic_failover", default=True,
                help="Move networks and routers off dead agents."),
    cfg.BoolOpt("drain_disabled_agents", default=False,
                help="Also move objects off agents set admin_state_up=false."),
    cfg.StrOpt("network_scheduler_driver", default="least_loaded",
               choices=["chance", "least_loaded", "az_aware"]),
    cfg.StrOpt("router_scheduler_driver", default="least_loaded",
               choices=["chance", "least_loaded", "az_aware"]),
    cfg.IntOpt("dhcp_agents_per_network", default=1, min=1),
    cfg.BoolOpt("network_auto_schedule", default=True),
    cfg.BoolOpt("router_auto_schedule", default=True),
    cfg.IntOpt("max_agents_per_type", default=10000, min=0,
               help="Registrations beyond this many agents of one type are refused "
                    "(AgentLimitReached); 0 means no limit."),
    cfg.IntOpt("agent_expiry_time", default=0, min=0,
               help="Seconds without a heartbeat after which an agent that hosts nothing is "
                    "deleted (it registers anew if it ever reports again); 0 means never."),
    # several controllers on PostgreSQL (docs/operations.md)
    cfg.FloatOpt("leader_lease_time", default=3.0, min=0.3,
                 help="Seconds a controller's leadership lasts without renewal; it renews "
                      "every third of that. A leader that cannot renew steps down after "
                      "this long, and another controller may take over."),
    # HA gateways: detection and fencing (docs/ha.md)
    cfg.FloatOpt("fence_timeout", default=0.4, min=0.05,
                 help="Seconds an L3 agent's gateway lease lasts after the keepalive that "
                      "renewed it (the agents' [agent] fence_timeout must not be longer). A "
                      "gateway whose lease lapsed has fenced itself: it deleted its "
                      "ROUTER_ACTIVE flows."),
    cfg.FloatOpt("fence_margin", default=0.15, min=0.0,
                 help="Seconds added to fence_timeout before a gateway that can no longer be "
                      "reached is taken for fenced (the agent's fence itself takes time)."),
    cfg.FloatOpt("gateway_echo_interval", default=0.1, min=0.01,
                 help="Seconds between OpenFlow echo requests to the switches of L3 agents."),
    cfg.IntOpt("gateway_echo_misses", default=3, min=1,
               help="Echo requests in a row without reply after which a gateway's control "
                    "channel counts as lost."),
]


QUOTA_GROUP = "quotas"
#: Default quotas per project, with Neutron's option names. Unlimited (-1) unless configured
#: (Neutron's defaults are 100, 100, 500, 10, 50 and 10): an upgrade limits nobody.
QUOTA_DEFAULTS = {"network": -1, "subnet": -1, "port": -1, "router": -1, "floatingip": -1,
                  "rbac_policy": -1}
QUOTA_OPTS = [
    cfg.IntOpt("default_quota", default=-1, min=-1,
               help="Default quota of a resource without its own quota_<resource> option "
                    "(-1: unlimited)."),
    *(cfg.IntOpt(f"quota_{name}", default=limit, min=-1,
                 help=f"Number of {name} resources a project may own (-1: unlimited).")
      for name, limit in QUOTA_DEFAULTS.items()),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    try:
        conf.register_opts(OPTS, group=GROUP)
    except cfg.DuplicateOptError:
        pass
    try:
        conf.register_opts(QUOTA_OPTS, group=QUOTA_GROUP)
    except cfg.DuplicateOptError:
        pass


def parse_vlan_ranges(entries: list[str]) -> dict[str, list[tuple[int, int]]]:
    """``['physnet1:100:200', 'physnet2']`` -> ``{'physnet1': [(100, 200)], 'physnet2': []}``."""
    ranges: dict[str, list[tuple[int, int]]] = {}
    for entry in entries:
        parts = entry.strip().split(":")
        if not parts[0]:
            continue
        physnet = parts[0]
        ranges.setdefault(physnet, [])
        if len(parts) == 3:
            low, high = int(parts[1]), int(parts[2])
            if not 1 <= low <= high <= 4094:
                raise ValueError(f"invalid VLAN range {entry!r}")
            ranges[physnet].append((low, high))
        elif len(parts) != 1:
            raise ValueError(f"invalid network_vlan_ranges entry {entry!r}")
    return ranges


def parse_mappings(entries: list[str]) -> dict[str, str]:
    """``['physnet1:uplink']`` -> ``{'physnet1': 'uplink'}``."""
    result: dict[str, str] = {}
    for entry in entries:
        if not entry.strip():
            continue
        key, sep, value = entry.strip().partition(":")
        if not sep or not key or not value:
            raise ValueError(f"invalid mapping {entry!r}, expected key:value")
        result[key] = value
    return result


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything the core needs from configuration, as plain values."""

    connection: str = "sqlite://"
    api_host: str = "127.0.0.1"
    api_port: int = 9696
    api_max_request_body_size: int = 114688
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9698
    rpc_host: str = "127.0.0.1"
    rpc_port: int = 9697
    rpc_tls_cert_file: str = ""
    rpc_tls_key_file: str = ""
    rpc_tls_ca_file: str = ""
    rpc_allow_insecure: bool = False
    rpc_max_connections: int = 4096
    rpc_max_connections_per_peer: int = 256
    rpc_idle_timeout: float = 60.0
    rpc_read_timeout: float = 10.0
    rpc_write_timeout: float = 10.0
    rpc_max_inflight: int = 32
    rpc_max_queued_bytes: int = 32 * 1024 * 1024
    rpc_max_frame_size: int = 1024 * 1024
    auth_strategy: str = "noauth"
    token_file: str = ""
    # The configuration files and directories the controller was started with: where
    # auth_strategy = keystone reads [keystone_authtoken] (keystonemiddleware's options).
    config_files: tuple[str, ...] = ()
    config_dirs: tuple[str, ...] = ()
    network_vlan_ranges: dict[str, list[tuple[int, int]]] = dataclasses.field(
        default_factory=lambda: {"physnet1": [(100, 3999)]})
    bridge_mappings: dict[str, str] = dataclasses.field(
        default_factory=lambda: {"physnet1": "uplink"})
    global_physnet_mtu: int = 1500
    max_routes: int = 30
    agent_down_time: int = 15
    monitor_interval: float = 0.0
    heartbeat_flush_interval: float = 1.0
    allow_automatic_failover: bool = True
    drain_disabled_agents: bool = False
    network_scheduler_driver: str = "least_loaded"
    router_scheduler_driver: str = "least_loaded"
    dhcp_agents_per_network: int = 1
    network_auto_schedule: bool = True
    router_auto_schedule: bool = True
    max_agents_per_type: int = 10000
    agent_expiry_time: int = 0
    leader_lease_time: float = 3.0
    fence_timeout: float = 0.4
    fence_margin: float = 0.15
    gateway_echo_interval: float = 0.1
    gateway_echo_misses: int = 3
    # [quotas]: default limit per resource name (-1: unlimited), and for resources without one.
    quotas: dict[str, int] = dataclasses.field(default_factory=lambda: dict(QUOTA_DEFAULTS))
    default_quota: int = -1

    @property
    def effective_monitor_interval(self) -> float:
        return self.monitor_interval or max(self.agent_down_time / 3.0, 0.2)

    @property
    def rpc_tls(self) -> TlsFiles | None:
        """The agent endpoint's TLS files, None without TLS (raises on a partial set)."""
        return TlsFiles.from_options(self.rpc_tls_cert_file, self.rpc_tls_key_file,
                                     self.rpc_tls_ca_file, prefix="rpc_tls_")


class RpcConfigError(ValueError):
    """The agent endpoint's options cannot be used: TLS options set in part or with unusable
    files, or a non-loopback rpc_host without TLS."""


def is_loopback(host: str) -> bool:
    """True when every address ``host`` names is a loopback address."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback
                                   for a in addresses)


def check_rpc_settings(settings: Settings) -> None:
    """Refuse configurations that would expose the agent endpoint or not work: TLS options
    set in part or with files that do not load, or a non-loopback ``rpc_host`` without TLS
    (unless ``rpc_allow_insecure``)."""
    try:
        tls = settings.rpc_tls
        if tls is not None:
            server_context(tls)
    except TlsConfigError as exc:
        raise RpcConfigError(f"[{GROUP}] {exc}") from exc
    if tls is None and not settings.rpc_allow_insecure and not is_loopback(settings.rpc_host):
        raise RpcConfigError(
            f"[{GROUP}] rpc_host = {settings.rpc_host} is not a loopback address and the agent "
            f"endpoint has no TLS: anyone reaching it could register agents and read every "
            f"port. Set rpc_tls_cert_file, rpc_tls_key_file and rpc_tls_ca_file (mutual TLS, "
            f"see README), or rpc_allow_insecure = true to accept the risk.")


def _cli_value(conf: cfg.ConfigOpts, name: str) -> list[str]:
    """``--config-file`` / ``--config-dir`` as parsed (absent before the conf was called)."""
    try:
        value = getattr(conf, name)
    except cfg.NoSuchOptError:
        return []
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def settings_from_conf(conf: cfg.ConfigOpts) -> Settings:
    group: Any = getattr(conf, GROUP)
    quotas: Any = getattr(conf, QUOTA_GROUP)
    connection = group.connection
    if not connection:
        os.makedirs(group.state_path, exist_ok=True)
        connection = "sqlite:///" + os.path.join(group.state_path, "ryu_sched.sqlite")
    settings = Settings(
        connection=connection,
        api_host=group.api_host,
        api_port=group.api_port,
        api_max_request_body_size=group.api_max_request_body_size,
        metrics_host=group.metrics_host,
        metrics_port=group.metrics_port,
        rpc_host=group.rpc_host,
        rpc_port=group.rpc_port,
        rpc_tls_cert_file=group.rpc_tls_cert_file,
        rpc_tls_key_file=group.rpc_tls_key_file,
        rpc_tls_ca_file=group.rpc_tls_ca_file,
        rpc_allow_insecure=group.rpc_allow_insecure,
        rpc_max_connections=group.rpc_max_connections,
        rpc_max_connections_per_peer=group.rpc_max_connections_per_peer,
        rpc_idle_timeout=group.rpc_idle_timeout,
        rpc_read_timeout=group.rpc_read_timeout,
        rpc_write_timeout=group.rpc_write_timeout,
        rpc_max_inflight=group.rpc_max_inflight,
        rpc_max_queued_bytes=group.rpc_max_queued_bytes,
        rpc_max_frame_size=group.rpc_max_frame_size,
        auth_strategy=group.auth_strategy,
        token_file=group.token_file,
        config_files=tuple(_cli_value(conf, "config_file")),
        config_dirs=tuple(_cli_value(conf, "config_dir")),
        network_vlan_ranges=parse_vlan_ranges(group.network_vlan_ranges),
        bridge_mappings=parse_mappings(group.bridge_mappings),
        global_physnet_mtu=group.global_physnet_mtu,
        max_routes=group.max_routes,
        agent_down_time=group.agent_down_time,
        monitor_interval=group.monitor_interval,
        heartbeat_flush_interval=group.heartbeat_flush_interval,
        allow_automatic_failover=group.allow_automatic_failover,
        drain_disabled_agents=group.drain_disabled_agents,
        network_scheduler_driver=group.network_scheduler_driver,
        router_scheduler_driver=group.router_scheduler_driver,
        dhcp_agents_per_network=group.dhcp_agents_per_network,
        network_auto_schedule=group.network_auto_schedule,
        router_auto_schedule=group.router_auto_schedule,
        max_agents_per_type=group.max_agents_per_type,
        agent_expiry_time=group.agent_expiry_time,
        leader_lease_time=group.leader_lease_time,
        fence_timeout=group.fence_timeout,
        fence_margin=group.fence_margin,
        gateway_echo_interval=group.gateway_echo_interval,
        gateway_echo_misses=group.gateway_echo_misses,
        quotas={name: getattr(quotas, f"quota_{name}") for name in QUOTA_DEFAULTS},
        default_quota=quotas.default_quota,
    )
    check_rpc_settings(settings)
    return settings
