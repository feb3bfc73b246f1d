"""The tag API, ``/v2.0/<plural>/<id>/tags[/<tag>]``: thin handlers over
:mod:`ryu_sched.resources.tags` for every resource with tags."""

from __future__ import annotations

from typing import Any

from ryu_sched.api.wsgi import ApiRequest, Route
from ryu_sched.resources import floatingips, networks, ports, routers, subnets
from ryu_sched.resources import tags as service
from ryu_sched.resources.tags import Taggable

TAGGABLE: tuple[Taggable, ...] = (
    Taggable("network", "networks", networks.load, networks.load_owned),
    Taggable("subnet", "subnets", subnets.load, subnets.load_owned),
    Taggable("port", "ports", ports.load, ports.load),
    Taggable("router", "routers", routers.load, routers.load),
    Taggable("floatingip", "floatingips", floatingips.load, floatingips.load),
)


def tag_routes(res: Taggable) -> list[Route]:
    base = f"/v2.0/{res.plural}/{{id}}/tags"

    def list_tags(req: ApiRequest, id: str) -> tuple[int, Any]:
        return 200, {"tags": service.get_tags(req.services, req.context, res, id)}

    def replace(req: ApiRequest, id: str) -> tuple[int, Any]:
        return 200, {"tags": service.replace_tags(req.services, req.context, res, id,
                                                  req.json_body())}

    def add_several(req: ApiRequest, id: str) -> tuple[int, Any]:
        return 201, {"tags": service.add_tags(req.services, req.context, res, id,
                                              req.json_body())}

    def remove_all(req: ApiRequest, id: str) -> tuple[int, Any]:
        service.remove_all_tags(req.services, req.context, res, id)
        return 204, None

    def check(req: ApiRequest, id: str, tag: str) -> tuple[int, Any]:
        service.check_tag(req.services, req.context, res, id, tag)
        return 204, None

    def add(req: ApiRequest, id: str, tag: str) -> tuple[int, Any]:
        service.add_tag(req.services, req.context, res, id, tag)
        return 201, None

    def remove(req: ApiRequest, id: str, tag: str) -> tuple[int, Any]:
        service.remove_tag(req.services, req.context, res, id, tag)
        return 204, None

    return [
        Route("GET", base, list_tags),
        Route("PUT", base, replace),
        Route("POST", base, add_several),
        Route("DELETE", base, remove_all),
        Route("GET", base + "/{tag}", check),
        Route("PUT", base + "/{tag}", add),
        Route("DELETE", base + "/{tag}", remove),
    ]


ROUTES: list[Route] = [route for res in TAGGABLE for route in tag_routes(res)]
