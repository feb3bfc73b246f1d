"""`/v2.0/availability_zones`: a thin handler over
:mod:`ryu_sched.resources.availability_zones`."""

from __future__ import annotations

from typing import Any

from ryu_sched.api.wsgi import ApiRequest, Route
from ryu_sched.resources import availability_zones as service
from ryu_sched.resources import common


def list_zones(req: ApiRequest) -> tuple[int, Any]:
    items = service.list_availability_zones(req.services, req.context, req.filters())
    return 200, {"availability_zones": [common.select_fields(i, req.fields) for i in items]}


ROUTES = [Route("GET", "/v2.0/availability_zones", list_zones)]
