"""The Neutron v2.0-compatible REST API."""

from __future__ import annotations

from ryu_sched.api.wsgi import ApiApplication, Route
from ryu_sched.services import Services


def all_routes() -> list[Route]:
    from ryu_sched.api import (
        agents,
        availability_zones,
        floatingips,
        ip_availability,
        networks,
        ports,
        quotas,
        rbac_policies,
        routers,
        security_groups,
        service_providers,
        subnets,
        tags,
        versions,
    )

    routes: list[Route] = []
    for module in (versions, networks, subnets, ports, routers, floatingips, security_groups,
                   agents, tags, ip_availability, availability_zones, service_providers,
                   quotas, rbac_policies):
        routes.extend(module.ROUTES)
    return routes


def build_app(services: Services) -> ApiApplication:
    return ApiApplication(services, all_routes())
