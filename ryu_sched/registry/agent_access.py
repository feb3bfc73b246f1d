"""What an authenticated agent may ask of the registry.

When the RPC endpoint runs with TLS client certificates, each connection carries
``peer_identities``: the names in the client's certificate (a frozenset). Then an agent may
only speak for its own host and only see what that host's agents host:

- ``report_state`` only for a ``host`` among its identities;
- ``get_hosted_networks`` / ``get_hosted_routers`` only for its own host;
- ``get_network_info`` only of a network bound to a DHCP agent on one of its hosts;
  ``get_router_info`` only of a router bound to an L3 agent on one of its hosts;
- ``create_dhcp_port`` / ``update_dhcp_port`` only of its own host's DHCP port of a network
  bound to its DHCP agent.

A connection without ``peer_identities`` (None: the endpoint runs without TLS) is not
checked: insecure mode, as documented in docs/protocol.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ryu_sched.registry.registry import Registry
from ryu_sched.rpc.protocol import RpcError
from ryu_sched.shared.vocabulary import HostedKind, dhcp_device_id


class NotAuthorized(RpcError):
    type_name = "NotAuthorized"


def identities(conn: Any) -> frozenset[str] | None:
    """The names the connection authenticated as; None in insecure mode."""
    names = getattr(conn, "peer_identities", None)
    return None if names is None else frozenset(names)


class AgentAccess:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.refused = 0

    def _refuse(self, message: str) -> NotAuthorized:
        self.refused += 1
        return NotAuthorized(message)

    def check_host(self, conn: Any, host: Any) -> None:
        names = identities(conn)
        if names is not None and (type(host) is not str or host not in names):
            raise self._refuse(f"this connection is authenticated for {sorted(names)}, "
                               f"not for host {str(host)[:255]!r}")

    def check_hosted(self, conn: Any, kind: HostedKind, obj_id: str) -> None:
        """The object must be bound to an agent of its kind on one of the peer's hosts."""
        names = identities(conn)
        if names is None:
            return
        if not any(rec.host in names for rec in self.registry.agents_hosting(kind, obj_id)):
            raise self._refuse(f"{kind.value} {obj_id} is not hosted by an agent of "
                               f"{sorted(names)}")

    def check_dhcp_port_create(self, conn: Any, network_id: str, host: str) -> None:
        names = identities(conn)
        if names is None:
            return
        self.check_host(conn, host)
        if not self.registry.hosted_on_host(HostedKind.NETWORK, network_id, host):
            raise self._refuse(f"network {network_id} is not hosted by the DHCP agent of "
                               f"{host}")

    def check_dhcp_port_update(self, conn: Any, port: Mapping[str, Any],
                               attrs: Mapping[str, Any]) -> None:
        """The port must be the DHCP port of one of the peer's hosts, for a network its DHCP
        agent hosts, and stay so (``device_id``, ``binding:host_id``)."""
        names = identities(conn)
        if names is None:
            return
        network_id = str(port.get("network_id"))
        for host in names:
            device_id = dhcp_device_id(network_id, host)
            if port.get("device_id") != device_id:
                continue
            if not self.registry.hosted_on_host(HostedKind.NETWORK, network_id, host):
                break
            if attrs.get("device_id", device_id) != device_id or \
                    attrs.get("binding:host_id", host) != host:
                raise self._refuse("a DHCP port cannot be given to another host")
            return
        raise self._refuse(f"port {port.get('id')} is not a DHCP port of {sorted(names)} "
                           "for a network they host")
