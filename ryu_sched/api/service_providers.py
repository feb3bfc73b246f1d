"""`/v2.0/service-providers` (Neutron's ``service-type``): ryu-sched has no pluggable service
providers (its routers are its own), so the list is empty."""

from __future__ import annotations

from typing import Any

from ryu_sched.api.wsgi import ApiRequest, Route


def list_providers(req: ApiRequest) -> tuple[int, Any]:
    return 200, {"service_providers": []}


ROUTES = [Route("GET", "/v2.0/service-providers", list_providers)]
