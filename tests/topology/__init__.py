"""A real test topology of network namespaces and Open vSwitch (ARCHITECTURE.md section 7).

Usage::

    from tests.topology import Topology, netns, require_root_and_ovs, leftovers, unique_prefix

    require_root_and_ovs()                      # skip (or, with CI=true, fail) if impossible
    prefix = unique_prefix()                    # e.g. "t3f9a"
    with Topology(prefix, tmp_path) as topo:
        h1 = topo.add_host("h1")
        gw = topo.add_host("gw", gateway=True)
        vm = topo.add_vm(h1, "vm1", port_id, "fa:16:3e:00:00:01", "10.0.0.11/24", "10.0.0.1")
        with topo.netns(topo.ctl_ns):           # this thread is now in the controller ns
            controller = subprocess.Popen([...])  # ...and so is what it starts
        vm.ping("10.0.0.12")
    assert leftovers(prefix) == []

Naming (all namespaces start with the prefix; interface names stay within 15 characters)
-------------------------------------------------------------------------------------------
``<prefix>`` is 1-6 characters, ``[a-z][a-z0-9]*``; host and VM names 1-8 characters.

=================  ==============================================================================
namespace          contents
=================  ==============================================================================
``<prefix>ctl``    linux bridge ``mgmt`` 198.18.0.1/24 (``topo.controller_ip``); ports
                   ``m-<host>``. Run the controller and the test's HTTP/RPC clients here.
``<prefix>fab``    linux bridge ``fabric`` (vlan_filtering 0, stp off); ports ``u-<host>``.
                   Carries the VLAN-tagged tenant traffic between hosts.
``<prefix>inet``   linux bridge ``extnet`` 203.0.113.1/24 (``topo.ext_gateway_ip``, the upstream
                   router of the external subnet); ports ``x-<host>``; ``lo`` has 198.51.100.1/32
                   (``topo.internet_ip``, the "internet server"); ip_forward on.
``<prefix><host>`` ovsdb-server + ovs-vswitchd (work dir ``<workdir>/<host>/{run,db,log,etc}``),
                   bridge ``br-int`` (netdev datapath, fail_mode=secure, OpenFlow13,
                   datapath-id = host index unless given, controller tcp:198.18.0.1:<of_port>
                   with max_backoff 1 s, disable-in-band); ``mgmt0`` 198.18.0.<10+n>/24 for the
                   n-th host (``host.mgmt_ip``); ``uplink`` on br-int (ofport 1);
                   gateway hosts: ``ext0`` on br-int (ofport 2); VM ports ``tap<port_id[:11]>``.
``<prefix><vm>``   ``eth0`` with the VM's MAC; its peer is the ``tap...`` port on the host.
=================  ==============================================================================

Address plan
------------
- 198.18.0.0/24 management: .1 controller (ctl ns), .2-.10 free for more controller
  addresses / test clients in the ctl ns, .11+ hosts (``mgmt0``). Nothing else routes there.
- 203.0.113.0/24 external network: .1 the upstream router (inet ns); the rest is for the
  external subnet's allocation pool (router gateway IPs, floating IPs).
- 198.51.100.1/32 the internet server (inet ns), reachable from the external subnet via .1.
- Tenant subnets are the test's choice (10.0.0.0/8 is free); they exist only in VM namespaces.
No address ever lands on the root namespace; no veth has an end there.

Processes and cleanup
---------------------
Every process started through the topology (OVS daemons, ``topo.popen``, ``vm.dhclient``,
pings; anything started by a thread inside ``netns()`` that inherits ``os.environ`` does *not*
qualify, so start such processes with ``env=topo.env``) carries ``RYU_SCHED_TOPO=<prefix>`` in
its environment. On exit (or a failure while building) the topology stops its children, the OVS
daemons by pidfile, then every process with the marker or living in one of its namespaces, and
deletes every namespace whose name starts with the prefix — so agents that create their own
namespaces should name them ``<prefix>...``. ``leftovers(prefix)`` lists what is still there;
``cleanup(prefix)`` removes a crashed run's remains. Prefixes used at the same time must not be
prefixes of one another: ``unique_prefix()`` returns fixed-length ones.

Failures and probes (gateway failover: tests/e2e/test_ha_failover.py, bench/failover.py)
----------------------------------------------------------------------------------------------
On a :class:`Host` (links are the host-side ends: ``mgmt0``, ``uplink``, gateways ``ext0``):

- ``host.vanish(*pids)``: SIGSTOP ovs-vswitchd, ovsdb-server and ``pids`` (e.g. the L3 agent)
  with their descendants, then all its links down in one ``ip -batch``: silent, no reset
  reaches anyone. ``host.come_back(order)`` undoes it: by default (``ComeBackOrder.
  PROCESSES_FIRST``) SIGCONT while still cut off, then links up; ``LINKS_FIRST`` the other
  way (the frozen switch then works off queued packets with its old flows). The switch
  reconnects after its own backoff unless kicked (``wait_controller_connected``).
- ``host.kill_switch()``: SIGKILL ovs-vswitchd (``start_vswitchd()`` brings it back, empty).
- ``host.cut_external()`` / ``restore_external()``, ``host.cut_management()`` /
  ``restore_management()``: one link down / up (``set_links`` for any set).
- :class:`ArpProbe` (``arp_probe.py``): from the internet namespace, an ARP request for an
  address every 20 ms from a per-request MAC; replies are read on the gateways' bridge ports
  (``x-<host>``), so each is matched to its request and its gateway: :class:`ArpReport`
  gives requests with 0, 1, 2+ replies, who answered, and when the doubles were.
- :class:`TcpSession` (``tcp_session.py``): a client in a VM sending a line every 50 ms to an
  :class:`EchoServer` and recording the echoes: :class:`SessionReport` says whether the
  session survived (``Outcome``) and its longest gap.
Both run as subprocesses inside the namespace (standard library only) and are stopped at
topology exit like every other process.

Pitfalls (found on this machine: kernel 6.x, OVS 3.1, userspace datapath)
-------------------------------------------------------------------------
- veth + userspace (netdev) datapath: packets leave a veth with CHECKSUM_PARTIAL and OVS reads
  them through AF_PACKET without completing the checksum, so UDP and TCP (DHCP!) arrive with
  bad checksums and are dropped while ping still works. ``ethtool -K <dev> tx off`` on every
  veth end we create fixes it (it also turns off TSO, so no oversized GSO frames reach OVS).
- OVS 3.1 ignores ``Controller.max_backoff`` for ``tcp:`` controllers (we set 1 s anyway): a
  switch whose controller is not there yet, or went away, retries after 1, 2, 4, then every
  8 s. After starting or restarting a controller call ``host.wait_controller_connected()``
  (kicks the switch every second until connected) or ``host.kick_controller()``.
- ovs-vswitchd flushes the whole flow table whenever a bridge goes from "has a controller" to
  "has none" or back, so never ``del-controller`` + ``set-controller`` to reconnect a switch:
  ``kick_controller()`` respells the target (``tcp:[ip]:port``) instead.
- Restarting ovs-vswitchd (``host.stop_vswitchd()``/``start_vswitchd()``) keeps the OVSDB
  configuration but loses every flow (fail_mode=secure: nothing passes until re-programmed).
- ``ip link add ... type bridge vlan_filtering 0`` fails on kernels without
  CONFIG_BRIDGE_VLAN_FILTERING; the default (off) is what we need, so it is not named.
- A linux bridge and veths pass full-size 802.1Q frames (1500-byte IP + tag) without MTU
  changes; the self-test checks ``ping -M do -s 1472`` across the tagged fabric.
- ``netns()`` switches one OS thread (``setns`` is per thread). Processes forked by that thread
  inherit the namespace; eventlet green threads share one OS thread.
- Detached daemons are reparented to PID 1; a process that lingers as a zombie is dead for
  ``leftovers()``.
- Poll, never sleep: ``wait_until(predicate, timeout, interval)``.
"""

from ._run import (
    MARKER_VAR,
    CommandError,
    TopologyError,
    require_root_and_ovs,
    wait_until,
)
from .arp_probe import ArpProbe, ArpReport
from .dhcp_client import DhcpLease
from .host import ComeBackOrder, Host
from .internet import EchoServer, Internet, Peer
from .netns import netns
from .ping import ContinuousPing, PingStats
from .tcp_session import Outcome, SessionReport, TcpSession
from .topology import (
    CONTROLLER_IP,
    EXT_GATEWAY_IP,
    INTERNET_IP,
    Topology,
    cleanup,
    leftovers,
    unique_prefix,
)
from .vm import VM, tap_name

__all__ = [
    "CONTROLLER_IP",
    "EXT_GATEWAY_IP",
    "INTERNET_IP",
    "MARKER_VAR",
    "VM",
    "ArpProbe",
    "ArpReport",
    "ComeBackOrder",
    "CommandError",
    "ContinuousPing",
    "DhcpLease",
    "EchoServer",
    "Host",
    "Internet",
    "Outcome",
    "Peer",
    "PingStats",
    "SessionReport",
    "TcpSession",
    "Topology",
    "TopologyError",
    "cleanup",
    "leftovers",
    "netns",
    "require_root_and_ovs",
    "tap_name",
    "unique_prefix",
    "wait_until",
]
