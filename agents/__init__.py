"""ryu-sched agents: processes beside each switch that heartbeat to the registry and do the
host-side work of what is scheduled to them (DHCP: dnsmasq per network; L3: the external link)."""
