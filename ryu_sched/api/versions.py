"""Version discovery (``GET /``, ``GET /v2.0``) and the extension list."""

from __future__ import annotations

from typing import Any

from ryu_sched.api.wsgi import ApiRequest, Route


def _base_url(req: ApiRequest) -> str:
    return req.request.host_url.rstrip("/")


def list_versions(req: ApiRequest) -> tuple[int, Any]:
    href = _base_url(req) + "/v2.0/"
    return 200, {"versions": [{"id": "v2.0", "status": "CURRENT",
                               "links": [{"href": href, "rel": "self"}]}]}


def show_v2(req: ApiRequest) -> tuple[int, Any]:
    base = _base_url(req) + "/v2.0/"
    resources = [("network", "networks"), ("subnet", "subnets"), ("port", "ports"),
                 ("router", "routers"), ("floatingip", "floatingips"), ("agent", "agents"),
                 ("security_group", "security-groups"),
                 ("security_group_rule", "security-group-rules"),
                 ("network_ip_availability", "network-ip-availabilities"),
                 ("availability_zone", "availability_zones"),
                 ("service_provider", "service-providers"),
                 ("rbac_policy", "rbac-policies"), ("quota", "quotas")]
    return 200, {"resources": [
        {"name": single, "collection": plural,
         "links": [{"href": base + plural, "rel": "self"}]} for single, plural in resources]}


EXTENSIONS: list[tuple[str, str, str]] = [
    ("agent", "agent", "The agent management extension."),
    ("dhcp_agent_scheduler", "DHCP Agent Scheduler", "Schedule networks among dhcp agents"),
    ("l3_agent_scheduler", "L3 Agent Scheduler", "Schedule routers among l3 agents"),
    ("l3-ha", "HA Router extension", "Adds HA capability to routers."),
    ("router-admin-state-down-before-update", "Enforce Router's Admin State Down Before "
     "Update Extension", "Ensure that the admin state of a router is down (False) before "
     "updating the ha attribute."),
    ("router", "Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 "
     "Neutron networks and access to external networks via a NAT gateway."),
    ("ext-gw-mode", "Neutron L3 Configurable external gateway mode",
     "Extension of the router abstraction for specifying whether SNAT should occur on the "
     "external gateway"),
    ("external-net", "Neutron external network", "Adds external network attribute to "
     "network resource."),
    ("provider", "Provider Network", "Expose mapping of virtual networks to physical "
     "networks"),
    ("binding", "Port Binding", "Expose port bindings of a virtual port to external "
     "application"),
    ("port-security", "Port Security", "Provides port security"),
    ("security-group", "security-group", "The security groups extension."),
    ("allowed-address-pairs", "Allowed Address Pairs", "Provides allowed address pairs"),
    ("availability_zone", "Availability Zone", "The availability zone extension."),
    ("network_availability_zone", "Network Availability Zone",
     "Availability zone support for network."),
    ("router_availability_zone", "Router Availability Zone",
     "Availability zone support for router."),
    ("standard-attr-tag", "Tag support for resources with standard attribute",
     "Enables to set tag on resources with standard attribute."),
    ("tag-creation", "Tag creation extension", "Allow to create multiple tags for a resource"),
    ("standard-attr-revisions", "Resource revision numbers",
     "This extension will display the revision number of neutron resources."),
    ("revision-if-match", "If-Match constraints based on revision_number",
     "Extension indicating that If-Match based on revision_number is supported."),
    ("standard-attr-timestamp", "Resource timestamps",
     "Adds created_at and updated_at fields to all Neutron resources that have Neutron "
     "standard attributes."),
    ("standard-attr-description", "standard-attr-description",
     "Extension to add descriptions to standard attributes"),
    ("fip-port-details", "Floating IP Port Details Extension",
     "Add port_details attribute to Floating IP resource"),
    ("filter-validation", "Filter parameters validation",
     "Provides validation on filter parameters."),
    ("network-ip-availability", "Network IP Availability",
     "Provides IP availability data for each network and subnet."),
    ("service-type", "Neutron Service Type Management",
     "API for retrieving service providers for Neutron advanced services"),
    ("pagination", "Pagination support",
     "Extension that indicates that pagination is enabled."),
    ("sorting", "Sorting support", "Extension that indicates that sorting is enabled."),
    ("project-id", "project_id field enabled",
     "Extension that indicates that project_id field is enabled."),
    ("extraroute", "Neutron Extra Route", "Extra routes configuration for L3 router"),
    ("extraroute-atomic", "Atomically add/remove extra routes",
     "Edit extra routes of a router on server side by atomically adding/removing extra "
     "routes"),
    ("rbac-policies", "RBAC Policies", "Allows creation and modification of policies "
     "that control tenant access to resources."),
    ("quotas", "Quota management support", "Expose functions for quotas management per "
     "tenant"),
    ("quota_details", "Quota details management support",
     "Expose functions for quotas usage statistics per project"),
    ("quota-check-limit", "Quota engine limit check",
     "Support for checking the resource usage before applying a new quota limit"),
    ("net-mtu", "Network MTU", "Provides MTU attribute for a network resource."),
    ("net-mtu-writable", "Network MTU (writable)",
     "Provides a writable MTU attribute for a network resource."),
]


def list_extensions(req: ApiRequest) -> tuple[int, Any]:
    return 200, {"extensions": [
        {"alias": alias, "name": name, "description": description, "links": [],
         "updated": "2013-02-03T10:00:00-00:00"} for alias, name, description in EXTENSIONS]}


def show_extension(req: ApiRequest, alias: str) -> tuple[int, Any]:
    from ryu_sched import errors

    for ext in list_extensions(req)[1]["extensions"]:
        if ext["alias"] == alias:
            return 200, {"extension": ext}
    raise errors.ResourceNotFound("Extension", alias)


# Discovery is public, as in Neutron: clients read it before they have a token.
ROUTES = [
    Route("GET", "/", list_versions, public=True),
    Route("GET", "/v2.0", show_v2, public=True),
    Route("GET", "/v2.0/extensions", list_extensions, public=True),
    Route("GET", "/v2.0/extensions/{alias}", show_extension, public=True),
]
