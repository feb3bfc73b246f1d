"""``ryu-sched-dhcp-agent``: serves DHCP for the networks the registry schedules here.

For each hosted network with a DHCP-enabled subnet: a namespace ``<prefix>qdhcp-<network>``
holding the inner end (``ns-`` + 11 characters of the port id) of a veth pair whose outer end
``tap<port id[:11]>`` is on the local bridge, where the controller recognises the DHCP port
(device_owner ``network:dhcp``, created through RPC); and a dnsmasq with static leases for the
network's ports. Networks that are no longer hosted are torn down. The state on the host is
rediscovered from the namespaces at every sync, so a restarted agent adopts what it left
behind (dnsmasq keeps running and is reloaded) or cleans it up.
"""

from __future__ import annotations

import ipaddress
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

from ryu_sched.shared.vocabulary import (
    NAMESPACE_PORT_PREFIX,
    TAP_PREFIX,
    AgentType,
    namespace_port_name,
    tap_name,
)

from . import system
from .base import AgentBase, SyncIncomplete, setup_logging
from .config import load_settings
from .dnsmasq import Dnsmasq, dhcp_subnets, traversable_by_others
from .rpc_client import RpcCallError

LOG = logging.getLogger(__name__)

NS_MARK = "qdhcp-"


class DhcpAgent(AgentBase):
    agent_type = AgentType.DHCP
    binary = "ryu-sched-dhcp-agent"
    topic = "dhcp_agent"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hosted: dict[str, int] = {}   # network id -> number of ports served
        self.dnsmasq_user = self.settings.dnsmasq_user or None
        if self.dnsmasq_user is None and not traversable_by_others(
                Path(self.settings.state_path)):
            LOG.warning("state_path %s is not reachable by other users: dnsmasq keeps "
                        "running as root so that it can re-read its files on reload",
                        self.settings.state_path)
            self.dnsmasq_user = "root"

    # --- naming -------------------------------------------------------------------------

    def namespace(self, network_id: str) -> str:
        return f"{self.settings.namespace_prefix}{NS_MARK}{network_id}"

    def local_networks(self) -> list[str]:
        mark = f"{self.settings.namespace_prefix}{NS_MARK}"
        return [ns[len(mark):] for ns in system.namespaces() if ns.startswith(mark)]

    def dnsmasq(self, network_id: str, port_id: str = "") -> Dnsmasq:
        return Dnsmasq(self.settings.dnsmasq,
                       Path(self.settings.state_path) / "dhcp" / network_id,
                       self.namespace(network_id), namespace_port_name(port_id),
                       self.settings.dhcp_lease_time, self.dnsmasq_user)

    # --- the agent's work -----------------------------------------------------------------

    def configurations(self) -> dict[str, Any]:
        return {"networks": len(self.hosted), "ports": sum(self.hosted.values())}

    def sync(self) -> None:
        """Make the host serve exactly the hosted networks. One network's failure (a full
        subnet, a command that failed) does not hold up the others: they are served, the
        failed one is kept as it is, and :class:`SyncIncomplete` asks for a retry."""
        hosted = set(self.rpc.call("get_hosted_networks", self.settings.host))
        served: dict[str, int] = {}
        failed: list[str] = []
        for network_id in sorted(hosted):
            try:
                info = self.rpc.call("get_network_info", network_id)
                if info is None or not dhcp_subnets(info):
                    self.teardown(network_id)
                    continue
                served[network_id] = self.ensure(network_id, info)
            except RpcCallError as exc:
                if exc.error_type == "NotFound":   # deleted meanwhile
                    self.teardown(network_id)
                    continue
                LOG.warning("network %s: %s", network_id, exc)
                failed.append(network_id)
            except (system.CommandFailed, OSError, subprocess.SubprocessError) as exc:
                LOG.warning("network %s: %s", network_id, exc)
                failed.append(network_id)
        for network_id in failed:
            served[network_id] = self.hosted.get(network_id, 0)
        for network_id in self.local_networks():
            if network_id not in served:
                self.teardown(network_id)
        self.hosted = served
        if failed:
            raise SyncIncomplete(f"{len(failed)} of {len(hosted)} networks failed")

    def ensure(self, network_id: str, info: dict[str, Any]) -> int:
        port = self.rpc.call("create_dhcp_port", network_id, self.settings.host)
        namespace = self.namespace(network_id)
        system.add_namespace(namespace)
        prefix_of = {s["id"]: ipaddress.IPv4Network(s["cidr"]).prefixlen
                     for s in info.get("subnets", [])}
        cidrs = [f"{f['ip_address']}/{prefix_of[f['subnet_id']]}"
                 for f in port.get("fixed_ips", []) if f.get("subnet_id") in prefix_of]
        outer, inner = tap_name(port["id"]), namespace_port_name(port["id"])
        self._remove_stale_ports(namespace, inner)
        system.ensure_veth(outer, inner, namespace, port["mac_address"], cidrs,
                           mtu=info.get("mtu"))
        self.ovs.add_port(outer, {"iface-id": port["id"], "attached-mac": port["mac_address"],
                                  "iface-status": "active"})
        dnsmasq = self.dnsmasq(network_id, port["id"])
        action = dnsmasq.apply(info)
        if action != "started" and network_id not in self.hosted:
            LOG.info("adopted dnsmasq %s for network %s (%s)", dnsmasq.pid(), network_id,
                     action)
        if port.get("status") != "ACTIVE":
            # It serves now: say so (the controller also sees its tap on the switch).
            self.rpc.call("update_dhcp_port", port["id"], {"status": "ACTIVE"})
        return len(info.get("ports", []))

    def _remove_stale_ports(self, namespace: str, keep: str) -> None:
        """A DHCP port that changed (deleted and re-created) leaves its old veth behind."""
        out = system.run(["ip", "-n", namespace, "-o", "link", "show"], check=False)
        for line in out.splitlines():
            name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
            if name.startswith(NAMESPACE_PORT_PREFIX) and name != keep:
                tap = TAP_PREFIX + name[len(NAMESPACE_PORT_PREFIX):]
                self.ovs.del_port(tap)
                system.delete_link(tap)

    def teardown(self, network_id: str) -> None:
        namespace = self.namespace(network_id)
        LOG.info("tearing down DHCP for network %s", network_id)
        self.dnsmasq(network_id).destroy()
        if namespace in system.namespaces():
            self._remove_stale_ports(namespace, keep="")
            system.delete_namespace(namespace)


def main(argv: list[str] | None = None) -> None:
    setup_logging()
    settings = load_settings(sys.argv[1:] if argv is None else argv,
                             prog="ryu-sched-dhcp-agent")
    DhcpAgent(settings).run()


if __name__ == "__main__":
    main()
