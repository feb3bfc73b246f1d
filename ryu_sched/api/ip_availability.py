"""`/v2.0/network-ip-availabilities`: thin handlers over
:mod:`ryu_sched.resources.ip_availability`."""

from __future__ import annotations

from typing import Any

from ryu_sched.api.wsgi import ApiRequest, Route
from ryu_sched.resources import common
from ryu_sched.resources import ip_availability as service

PATH = "/v2.0/network-ip-availabilities"


def list_availabilities(req: ApiRequest) -> tuple[int, Any]:
    items = service.list_availabilities(req.services, req.context, req.filters())
    return 200, {"network_ip_availabilities": [common.select_fields(i, req.fields)
                                               for i in items]}


def show_availability(req: ApiRequest, id: str) -> tuple[int, Any]:
    item = service.get_availability(req.services, req.context, id)
    return 200, {"network_ip_availability": common.select_fields(item, req.fields)}


ROUTES = [
    Route("GET", PATH, list_availabilities),
    Route("GET", PATH + "/{id}", show_availability),
]
