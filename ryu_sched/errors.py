"""Errors that know their HTTP status and Neutron type name.

The API renders any :class:`NeutronError` as ``{"NeutronError": {"type", "message", "detail"}}``
with :attr:`status`; handlers only raise.

Size: over 400 lines on purpose: one small class per Neutron error type the API can
answer (its status and type name); a flat catalogue, looked up by name.
"""

from __future__ import annotations


class NeutronError(Exception):
    status = 500
    type_name = "NeutronError"
    message_format = "An unknown exception occurred."

    def __init__(self, message: str | None = None, **kwargs: object) -> None:
        self.kwargs = kwargs
        if message is None:
            try:
                message = self.message_format % kwargs if kwargs else self.message_format
            except (KeyError, TypeError, ValueError):
                message = self.message_format
        self.message = message
        super().__init__(message)

    @property
    def error_type(self) -> str:
        return self.type_name if self.type_name != "NeutronError" else type(self).__name__

    def body(self) -> dict[str, dict[str, str]]:
        return {"NeutronError": {"type": self.error_type, "message": self.message,
                                 "detail": ""}}


class BadRequest(NeutronError):
    status = 400
    type_name = "BadRequest"
    message_format = "Bad %(resource)s request: %(msg)s."


class InvalidInput(BadRequest):
    type_name = "InvalidInput"
    message_format = "Invalid input for operation: %(error_message)s."


class HTTPBadRequest(BadRequest):
    """What Neutron's API layer answers for malformed bodies, unknown attributes, bad types."""

    type_name = "HTTPBadRequest"
    message_format = "%(msg)s"


class InvalidIpForSubnet(BadRequest):
    type_name = "InvalidIpForSubnet"
    message_format = "IP address %(ip_address)s is not a valid IP for the specified subnet."


class InvalidIpForNetwork(BadRequest):
    type_name = "InvalidIpForNetwork"
    message_format = "IP address %(ip_address)s is not a valid IP for any of the subnets on " \
                     "the specified network."


class InvalidAllocationPool(BadRequest):
    type_name = "InvalidAllocationPool"
    message_format = "The allocation pool %(pool)s is not valid."


class SubnetMismatchForPort(BadRequest):
    type_name = "SubnetMismatchForPort"
    message_format = "Subnet on port %(port_id)s does not match the requested subnet " \
                     "%(subnet_id)s."


class OutOfBoundsAllocationPool(BadRequest):
    type_name = "OutOfBoundsAllocationPool"
    message_format = "The allocation pool %(pool)s spans beyond the subnet cidr %(subnet_cidr)s."


class NotAuthenticated(NeutronError):
    status = 401
    type_name = "NotAuthenticated"
    message_format = "Authentication required."


class PolicyNotAuthorized(NeutronError):
    status = 403
    type_name = "PolicyNotAuthorized"
    message_format = "Rule %(action)s is disallowed by policy."


class NotFound(NeutronError):
    status = 404
    type_name = "NotFound"
    message_format = "An object with the specified identifier was not found."


class ResourceNotFound(NotFound):
    """``<Kind>NotFound`` with Neutron's wording, e.g. ``NetworkNotFound``."""

    kind = ""
    words = ""

    def __init__(self, kind: str, resource_id: str) -> None:
        self.kind = kind
        self.type_name = f"{kind}NotFound"
        words = self.words or "".join(
            " " + c.lower() if c.isupper() else c for c in kind).strip().capitalize()
        self.resource_id = resource_id
        super().__init__(f"{words} {resource_id} could not be found.")


class _KindNotFound(ResourceNotFound):
    def __init__(self, resource_id: str) -> None:
        super().__init__(self.kind, resource_id)


class NetworkNotFound(_KindNotFound):
    kind = "Network"


class SubnetNotFound(_KindNotFound):
    kind = "Subnet"


class PortNotFound(_KindNotFound):
    kind = "Port"


class RouterNotFound(_KindNotFound):
    kind = "Router"


class FloatingIPNotFound(_KindNotFound):
    kind = "FloatingIP"
    words = "Floating IP"


class RouterInterfaceNotFound(NotFound):
    type_name = "RouterInterfaceNotFound"
    message_format = "Router %(router_id)s does not have an interface with id %(port_id)s."


class RouterInterfaceNotFoundForSubnet(NotFound):
    type_name = "RouterInterfaceNotFoundForSubnet"
    message_format = "Router %(router_id)s has no interface on subnet %(subnet_id)s."


class ExternalGatewayForFloatingIPNotFound(NotFound):
    type_name = "ExternalGatewayForFloatingIPNotFound"
    message_format = ("External network %(external_network_id)s is not reachable from subnet "
                      "%(subnet_id)s. Therefore, cannot associate Port %(port_id)s with a "
                      "Floating IP.")


class MethodNotAllowed(NeutronError):
    status = 405
    type_name = "HTTPMethodNotAllowed"
    message_format = "The method is not allowed for this resource."


class Conflict(NeutronError):
    status = 409
    type_name = "Conflict"
    message_format = "A conflict occurred."


class InUse(Conflict):
    type_name = "InUse"
    message_format = "The resource is in use."


class NetworkInUse(InUse):
    type_name = "NetworkInUse"
    message_format = ("Unable to complete operation on network %(net_id)s. There are one or "
                      "more ports still in use on the network.")


class SubnetInUse(InUse):
    type_name = "SubnetInUse"
    message_format = ("Unable to complete operation on subnet %(subnet_id)s: One or more ports "
                      "have an IP allocation from this subnet.")


class PortInUse(InUse):
    type_name = "PortInUse"
    message_format = ("Unable to complete operation on port %(port_id)s for network "
                      "%(net_id)s. Port already has an attached device %(device_id)s.")


class ServicePortInUse(InUse):
    type_name = "ServicePortInUse"
    message_format = ("Port %(port_id)s cannot be deleted directly via the port API: "
                      "%(reason)s.")


class RouterInUse(InUse):
    type_name = "RouterInUse"
    message_format = "Router %(router_id)s still has ports."


class RouterInterfaceInUseByFloatingIP(InUse):
    type_name = "RouterInterfaceInUseByFloatingIP"
    message_format = ("Router interface for subnet %(subnet_id)s on router %(router_id)s "
                      "cannot be deleted, as it is required by one or more floating IPs.")


class RouterExternalGatewayInUseByFloatingIp(InUse):
    type_name = "RouterExternalGatewayInUseByFloatingIp"
    message_format = ("Gateway cannot be updated for router %(router_id)s, since a gateway to "
                      "external network %(net_id)s is required by one or more floating IPs.")


class RouterInterfaceCidrOverlap(Conflict):
    """Neutron answers 400 BadRequest here; the issue asks for 409 with a specific type."""

    type_name = "RouterInterfaceCidrOverlap"
    message_format = ("Cidr %(cidr)s of subnet %(subnet_id)s overlaps with cidr "
                      "%(other_cidr)s of subnet %(other_subnet_id)s already on router "
                      "%(router_id)s.")


class FloatingIPPortAlreadyAssociated(InUse):
    type_name = "FloatingIPPortAlreadyAssociated"
    message_format = ("Cannot associate floating IP %(floating_ip_address)s (%(fip_id)s) with "
                      "port %(port_id)s using fixed IP %(fixed_ip)s, as that fixed IP already "
                      "has a floating IP on external network %(net_id)s.")


class IpAddressAlreadyAllocated(Conflict):
    type_name = "IpAddressAlreadyAllocated"
    message_format = "IP address %(ip)s already allocated in subnet %(subnet_id)s."


class IpAddressGenerationFailure(Conflict):
    type_name = "IpAddressGenerationFailure"
    message_format = "No more IP addresses available on network %(net_id)s."


class MacAddressInUse(InUse):
    type_name = "MacAddressInUse"
    message_format = ("Unable to complete operation for network %(net_id)s. The mac address "
                      "%(mac)s is in use.")


class VlanIdInUse(InUse):
    type_name = "VlanIdInUse"
    message_format = ("Unable to create the network. The VLAN %(vlan_id)s on physical "
                      "network %(physical_network)s is in use.")


class FlatNetworkInUse(InUse):
    type_name = "FlatNetworkInUse"
    message_format = ("Unable to create the flat network. Physical network "
                      "%(physical_network)s is in use.")


class OverlappingAllocationPools(Conflict):
    type_name = "OverlappingAllocationPools"
    message_format = ("Found overlapping allocation pools: %(pool_1)s %(pool_2)s for subnet "
                      "%(subnet_cidr)s.")


class GatewayConflictWithAllocationPools(InUse):
    type_name = "GatewayConflictWithAllocationPools"
    message_format = "Gateway ip %(ip_address)s conflicts with allocation pool %(pool)s."


class ServiceUnavailable(NeutronError):
    status = 503
    type_name = "ServiceUnavailable"
    message_format = "The service is unavailable."


class NoNetworkAvailable(ServiceUnavailable):
    type_name = "NoNetworkAvailable"
    message_format = ("Unable to create the network. No tenant network is available for "
                      "allocation.")


# --- security groups and allowed address pairs ----------------------------------------------

class SecurityGroupNotFound(NotFound):
    type_name = "SecurityGroupNotFound"
    message_format = "Security group %(id)s does not exist"


class SecurityGroupRuleNotFound(NotFound):
    type_name = "SecurityGroupRuleNotFound"
    message_format = "Security group rule %(id)s does not exist"


class SecurityGroupInUse(InUse):
    type_name = "SecurityGroupInUse"
    message_format = "Security Group %(id)s in use."


class SecurityGroupCannotRemoveDefault(InUse):
    type_name = "SecurityGroupCannotRemoveDefault"
    message_format = "Insufficient rights for removing default security group."


class SecurityGroupCannotUpdateDefault(InUse):
    type_name = "SecurityGroupCannotUpdateDefault"
    message_format = "Updating default security group not allowed."


class SecurityGroupDefaultAlreadyExists(InUse):
    type_name = "SecurityGroupDefaultAlreadyExists"
    message_format = "Default security group already exists."


class SecurityGroupRuleExists(InUse):
    type_name = "SecurityGroupRuleExists"
    message_format = "Security group rule already exists. Rule id is %(rule_id)s."


class SecurityGroupRuleInvalidProtocol(InvalidInput):
    type_name = "SecurityGroupRuleInvalidProtocol"
    message_format = ("Security group rule protocol %(protocol)s not supported. Only "
                      "protocol values %(values)s and integer representations [0 to 255] "
                      "are supported.")


class SecurityGroupRemoteGroupAndRemoteIpPrefix(InvalidInput):
    type_name = "SecurityGroupRemoteGroupAndRemoteIpPrefix"
    message_format = "Only remote_ip_prefix or remote_group_id may be provided."


class SecurityGroupProtocolRequiredWithPorts(InvalidInput):
    type_name = "SecurityGroupProtocolRequiredWithPorts"
    message_format = "Must also specify protocol if port range is given."


class SecurityGroupInvalidPortRange(InvalidInput):
    type_name = "SecurityGroupInvalidPortRange"
    message_format = "For TCP/UDP protocols, port_range_min must be <= port_range_max"


class SecurityGroupInvalidPortValue(InvalidInput):
    type_name = "SecurityGroupInvalidPortValue"
    message_format = "Invalid value for port %(port)s"


class SecurityGroupInvalidIcmpValue(InvalidInput):
    type_name = "SecurityGroupInvalidIcmpValue"
    message_format = ("Invalid value for ICMP %(field)s (%(attr)s) %(value)s. It must be 0 "
                      "to 255.")


class SecurityGroupMissingIcmpType(InvalidInput):
    type_name = "SecurityGroupMissingIcmpType"
    message_format = "ICMP code (port-range-max) %(value)s is provided but ICMP type " \
                     "(port-range-min) is missing."


class SecurityGroupInvalidProtocolForPortRange(InvalidInput):
    type_name = "SecurityGroupInvalidProtocolForPortRange"
    message_format = ("Invalid protocol %(protocol)s for port range, only supported for "
                      "TCP and UDP (and ICMP type and code).")


class SecurityGroupRuleParameterConflict(InvalidInput):
    type_name = "SecurityGroupRuleParameterConflict"
    message_format = "Conflicting value ethertype %(ethertype)s for CIDR %(cidr)s"


class InvalidCIDR(BadRequest):
    type_name = "InvalidCIDR"
    message_format = "Invalid CIDR %(input)s given as IP prefix."


class PortSecurityAndIPRequiredForSecurityGroups(InvalidInput):
    type_name = "PortSecurityAndIPRequiredForSecurityGroups"
    message_format = ("Port security must be enabled and port must have an IP address in "
                      "order to use security groups.")


class PortSecurityPortHasSecurityGroup(InUse):
    type_name = "PortSecurityPortHasSecurityGroup"
    message_format = ("Port has security group associated. Cannot disable port security or "
                      "IP address until security group is removed.")


class AddressPairAndPortSecurityRequired(Conflict):
    type_name = "AddressPairAndPortSecurityRequired"
    message_format = ("Port Security must be enabled in order to have allowed address pairs "
                      "on a port.")


class DuplicateAddressPairInRequest(InvalidInput):
    type_name = "DuplicateAddressPairInRequest"
    message_format = ("Request contains duplicate address pair: mac_address %(mac_address)s "
                      "ip_address %(ip_address)s.")


class AllowedAddressPairExhausted(BadRequest):
    type_name = "AllowedAddressPairExhausted"
    message_format = "The number of allowed address pair exceeds the maximum %(quota)s."


# --- the agent-scheduler extension (the registry) -----------------------------------------

class AgentNotFound(NotFound):
    type_name = "AgentNotFound"
    message_format = "Agent %(id)s could not be found."


class InvalidDHCPAgent(AgentNotFound):
    """Neutron derives it from AgentNotFound: an agent of the wrong type or disabled is 404."""

    type_name = "InvalidDHCPAgent"
    message_format = "Agent %(id)s is not a valid DHCP Agent or has been disabled."


class InvalidL3Agent(AgentNotFound):
    type_name = "InvalidL3Agent"
    message_format = "Agent %(id)s is not a L3 Agent or has been disabled."


class NetworkHostedByDHCPAgent(Conflict):
    type_name = "NetworkHostedByDHCPAgent"
    message_format = ("The network %(network_id)s has been already hosted by the DHCP "
                      "Agent %(agent_id)s.")


class NetworkNotHostedByDhcpAgent(Conflict):
    type_name = "NetworkNotHostedByDhcpAgent"
    message_format = "The network %(network_id)s is not hosted by the DHCP agent %(agent_id)s."


class RouterHostedByL3Agent(Conflict):
    type_name = "RouterHostedByL3Agent"
    message_format = ("The router %(router_id)s has been already hosted by the L3 Agent "
                      "%(agent_id)s.")


class RouterNotHostedByL3Agent(Conflict):
    type_name = "RouterNotHostedByL3Agent"
    message_format = "The router %(router_id)s is not hosted by L3 agent %(agent_id)s."


class RouterL3AgentBindingNotFound(NotFound):
    """Ours (the admin move of an HA router's active role): no such binding."""

    type_name = "RouterL3AgentBindingNotFound"
    message_format = "The router %(router_id)s is not hosted by L3 agent %(agent_id)s."


class L3AgentNotAlive(Conflict):
    """Ours: the active role of a router only goes to a live L3 agent."""

    type_name = "L3AgentNotAlive"
    message_format = ("L3 agent %(agent_id)s is not alive: it cannot take the active role of "
                      "router %(router_id)s.")


# --- standard attributes, quotas, RBAC, extra routes --------------------------------------

class PreconditionFailed(NeutronError):
    status = 412
    type_name = "PreconditionFailed"
    message_format = "A precondition failed."


class RevisionNumberConstraintFailed(PreconditionFailed):
    type_name = "RevisionNumberConstraintFailed"
    message_format = "Constrained to %(expected)s, but current revision is %(current)s"


class TagNotFound(NotFound):
    type_name = "TagNotFound"
    message_format = "Tag %(tag)s could not be found."


class DefaultExternalNetworkExists(Conflict):
    type_name = "DefaultExternalNetworkExists"
    message_format = "Unable to set a default external network: %(net_id)s already is one."


class OverQuota(Conflict):
    type_name = "OverQuota"
    message_format = "Quota exceeded for resources: %(overs)s."


class InvalidQuotaValue(Conflict):
    type_name = "InvalidQuotaValue"
    message_format = ("Change would make the limit lower than the usage for the following "
                      "resources: %(unders)s.")


class InvalidSharedSetting(Conflict):
    type_name = "InvalidSharedSetting"
    message_format = ("Unable to reconfigure sharing settings for network %(network)s. "
                      "Multiple tenants are using it.")


class RbacPolicyInUse(Conflict):
    type_name = "RbacPolicyInUse"
    message_format = ("RBAC policy on object %(object_id)s cannot be removed because other "
                      "objects depend on it.\nDetails: %(details)s")


class DuplicateRbacPolicy(Conflict):
    type_name = "DuplicateRbacPolicy"
    message_format = "An RBAC policy already exists with those values."


class RbacPolicyNotFound(NotFound):
    type_name = "RbacPolicyNotFound"
    message_format = "RBAC policy of type %(object_type)s with ID %(id)s not found"


class InvalidRoutes(BadRequest):
    type_name = "InvalidRoutes"
    message_format = "Invalid format for routes: %(routes)s, %(reason)s."


class RoutesExhausted(BadRequest):
    type_name = "RoutesExhausted"
    message_format = ("Unable to complete operation for %(router_id)s. The number of routes "
                      "exceeds the maximum %(quota)s.")


class RouterInterfaceInUseByRoute(InUse):
    type_name = "RouterInterfaceInUseByRoute"
    message_format = ("Router interface for subnet %(subnet_id)s on router %(router_id)s "
                      "cannot be deleted, as it is required by one or more routes.")
