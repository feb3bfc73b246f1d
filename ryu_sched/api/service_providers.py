"""`/v2.0/service-providers` (Neutron's ``service-type``): ryu-sched has no pluggable service
providers; it lists the two kinds of router it implements, as Neutron lists its router
providers when it offers ``l3-ha``: ``single_node`` (a router on one L3 agent) and ``ha``
(one active L3 agent and standbys)."""

from __future__ import annotations

from typing import Any

from ryu_sched.api.wsgi import ApiRequest, Route

PROVIDERS = [{"service_type": "L3_ROUTER_NAT", "name": name, "default": False}
             for name in ("single_node", "ha")]


def list_providers(req: ApiRequest) -> tuple[int, Any]:
    return 200, {"service_providers": [dict(p) for p in PROVIDERS]}


ROUTES = [Route("GET", "/v2.0/service-providers", list_providers)]
