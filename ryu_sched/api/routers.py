"""`/v2.0/routers` and the interface actions: thin handlers over
:mod:`ryu_sched.resources.routers`."""

from __future__ import annotations

from typing import Any

from ryu_sched.api.wsgi import ApiRequest, Collection, Route, collection_routes
from ryu_sched.resources import routers as service


def show(req: ApiRequest, id: str) -> object:
    return service.get_router(req.services, req.context, id)


def add_interface(req: ApiRequest, id: str) -> tuple[int, Any]:
    return 200, service.add_router_interface(req.services, req.context, id, req.json_body())


def remove_interface(req: ApiRequest, id: str) -> tuple[int, Any]:
    return 200, service.remove_router_interface(req.services, req.context, id,
                                                req.json_body())


def add_extraroutes(req: ApiRequest, id: str) -> tuple[int, Any]:
    return 200, {"router": service.add_extraroutes(req.services, req.context, id,
                                                   req.json_body())}


def remove_extraroutes(req: ApiRequest, id: str) -> tuple[int, Any]:
    return 200, {"router": service.remove_extraroutes(req.services, req.context, id,
                                                      req.json_body())}


ROUTES: list[Route] = [
    Route("PUT", "/v2.0/routers/{id}/add_router_interface", add_interface,
          action="add_router_interface", target=show),
    Route("PUT", "/v2.0/routers/{id}/remove_router_interface", remove_interface,
          action="remove_router_interface", target=show),
    Route("PUT", "/v2.0/routers/{id}/add_extraroutes", add_extraroutes,
          action="add_extraroutes", target=show),
    Route("PUT", "/v2.0/routers/{id}/remove_extraroutes", remove_extraroutes,
          action="remove_extraroutes", target=show),
    *collection_routes(Collection(
        singular="router", plural="routers",
        page=service.page_routers, get=service.get_router, create=service.create_router,
        update=service.update_router, delete=service.delete_router)),
]
