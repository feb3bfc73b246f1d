"""`/v2.0/quotas`: thin handlers over :mod:`ryu_sched.resources.quotas`."""

from __future__ import annotations

from typing import Any

from ryu_sched.api.wsgi import ApiRequest, Route
from ryu_sched.resources import quotas as service


def list_quotas(req: ApiRequest) -> tuple[int, Any]:
    return 200, {"quotas": service.list_quotas(req.services, req.context)}


def show_own_project(req: ApiRequest) -> tuple[int, Any]:
    """Neutron's ``GET /v2.0/quotas/tenant``: the caller's project."""
    return 200, {"tenant": {"tenant_id": req.context.project_id}}


def show_quota(req: ApiRequest, id: str) -> tuple[int, Any]:
    return 200, {"quota": service.get_quota(req.services, req.context, id)}


def show_default(req: ApiRequest, id: str) -> tuple[int, Any]:
    return 200, {"quota": service.get_default_quota(req.services, req.context, id)}


def show_details(req: ApiRequest, id: str) -> tuple[int, Any]:
    return 200, {"quota": service.get_quota_details(req.services, req.context, id)}


def update_quota(req: ApiRequest, id: str) -> tuple[int, Any]:
    return 200, {"quota": service.update_quota(req.services, req.context, id,
                                               req.json_body("quota"))}


def delete_quota(req: ApiRequest, id: str) -> tuple[int, Any]:
    service.delete_quota(req.services, req.context, id)
    return 204, None


ROUTES = [
    Route("GET", "/v2.0/quotas", list_quotas),
    Route("GET", "/v2.0/quotas/tenant", show_own_project),
    Route("GET", "/v2.0/quotas/{id}/default", show_default),
    Route("GET", "/v2.0/quotas/{id}/details", show_details),
    Route("GET", "/v2.0/quotas/{id}", show_quota),
    Route("PUT", "/v2.0/quotas/{id}", update_quota),
    Route("DELETE", "/v2.0/quotas/{id}", delete_quota),
]
