"""A small webob WSGI application: routing, JSON, auth context and Neutron error bodies.

Resource modules declare ``ROUTES``: a list of :class:`Route`. A handler receives an
:class:`ApiRequest` plus the path parameters and returns ``(status, body_or_None)``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

import webob
import webob.exc

from ryu_sched import errors
from ryu_sched.resources import common
from ryu_sched.resources.context import Context as RequestContext
from ryu_sched.services import Services

LOG = logging.getLogger(__name__)

Handler = Callable[..., tuple[int, Any]]


@dataclasses.dataclass(frozen=True)
class Route:
    method: str
    pattern: str              # e.g. "/v2.0/networks/{id}"
    handler: Handler

    def compile(self) -> re.Pattern[str]:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.pattern.rstrip("/"))
        return re.compile("^" + regex + r"/?$")


class ApiRequest:
    """What a handler sees of one HTTP request."""

    def __init__(self, request: webob.Request, context: RequestContext,
                 services: Services) -> None:
        self.request = request
        self.context = context
        self.services = services

    def json_body(self, resource: str | None = None) -> dict[str, Any]:
        """The parsed JSON body; with ``resource``, the object under that key."""
        raw = self.request.body
        if not raw:
            raise errors.HTTPBadRequest(msg="Malformed request body: body is empty")
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise errors.HTTPBadRequest(msg="Malformed request body") from None
        if not isinstance(body, dict):
            raise errors.HTTPBadRequest(msg="Malformed request body: not a JSON object")
        if resource is None:
            return body
        inner = body.get(resource)
        if not isinstance(inner, dict):
            raise errors.HTTPBadRequest(
                msg=f"Unable to find '{resource}' in request body")
        if len(body) != 1:
            extra = sorted(k for k in body if k != resource)
            raise errors.HTTPBadRequest(
                msg="Unrecognized attribute(s) '{}'".format(", ".join(extra)))
        return inner

    @property
    def query(self) -> dict[str, list[str]]:
        """Query parameters, each a list of values (Neutron allows repeated keys)."""
        result: dict[str, list[str]] = {}
        for key, value in self.request.GET.items():
            result.setdefault(key, []).append(value)
        return result

    @property
    def fields(self) -> list[str]:
        return [f for f in self.request.GET.getall("fields") if f]

    def filters(self) -> dict[str, list[str]]:
        """Query filters, without the paging/sorting/fields keys."""
        skip = {"fields", "limit", "marker", "sort_key", "sort_dir", "page_reverse"}
        return {k: v for k, v in self.query.items() if k not in skip}


# --- collections: list/show/create/update/delete over a service module ------------------------

ListFn = Callable[[Services, RequestContext, dict[str, list[str]]], list[dict[str, Any]]]
GetFn = Callable[[Services, RequestContext, str], dict[str, Any]]
CreateFn = Callable[[Services, RequestContext, dict[str, Any]], dict[str, Any]]
UpdateFn = Callable[[Services, RequestContext, str, dict[str, Any]], dict[str, Any]]
DeleteFn = Callable[[Services, RequestContext, str], None]


@dataclasses.dataclass(frozen=True)
class Collection:
    singular: str
    plural: str
    list: ListFn
    get: GetFn
    create: CreateFn
    update: UpdateFn
    delete: DeleteFn

    @property
    def path(self) -> str:
        return "/v2.0/" + self.plural


def _int_param(req: ApiRequest, name: str) -> int | None:
    value = req.request.GET.get(name)
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except ValueError:
        raise errors.HTTPBadRequest(msg=f"{name} must be an integer, not '{value}'") from None
    if number < 0:
        raise errors.HTTPBadRequest(msg=f"{name} must not be negative")
    return number


def list_response(req: ApiRequest, plural: str, items: list[dict[str, Any]]
                  ) -> dict[str, Any]:
    """Sorting, marker/limit paging and ``fields``, applied to a filtered list."""
    sort_keys = req.request.GET.getall("sort_key")
    if sort_keys:
        items = common.sort_items(items, sort_keys, req.request.GET.getall("sort_dir"))
    limit = _int_param(req, "limit")
    marker = req.request.GET.get("marker") or None
    items, more = common.page(items, limit, marker)
    fields = req.fields
    body: dict[str, Any] = {plural: [common.select_fields(i, fields) for i in items]}
    if more and items:
        query = [(k, v) for k, v in req.request.GET.items() if k != "marker"]
        query.append(("marker", items[-1]["id"]))
        from urllib.parse import urlencode

        href = req.request.host_url + req.request.path + "?" + urlencode(query)
        body[plural + "_links"] = [{"rel": "next", "href": href}]
    return body


def collection_routes(col: Collection) -> list[Route]:
    def list_items(req: ApiRequest) -> tuple[int, Any]:
        items = col.list(req.services, req.context, req.filters())
        return 200, list_response(req, col.plural, items)

    def show(req: ApiRequest, id: str) -> tuple[int, Any]:
        item = col.get(req.services, req.context, id)
        return 200, {col.singular: common.select_fields(item, req.fields)}

    def create(req: ApiRequest) -> tuple[int, Any]:
        body = req.json_body()
        if col.plural in body and isinstance(body[col.plural], list) and len(body) == 1:
            # Bulk create: one transaction per item (not atomic, unlike Neutron).
            created = []
            for entry in body[col.plural]:
                if not isinstance(entry, dict):
                    raise errors.HTTPBadRequest(msg=f"Invalid {col.singular} in bulk body")
                created.append(col.create(req.services, req.context, entry))
            return 201, {col.plural: created}
        attrs = req.json_body(col.singular)
        return 201, {col.singular: col.create(req.services, req.context, attrs)}

    def update(req: ApiRequest, id: str) -> tuple[int, Any]:
        attrs = req.json_body(col.singular)
        return 200, {col.singular: col.update(req.services, req.context, id, attrs)}

    def delete(req: ApiRequest, id: str) -> tuple[int, Any]:
        col.delete(req.services, req.context, id)
        return 204, None

    return [
        Route("GET", col.path, list_items),
        Route("POST", col.path, create),
        Route("GET", col.path + "/{id}", show),
        Route("PUT", col.path + "/{id}", update),
        Route("DELETE", col.path + "/{id}", delete),
    ]


def load_tokens(path: str) -> dict[str, RequestContext]:
    """Token file: ``{"<token>": {"project_id": "...", "role": "admin"|"member"}}``."""
    if not path:
        return {}
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    tokens: dict[str, RequestContext] = {}
    for token, entry in data.items():
        role = str(entry.get("role", "member"))
        tokens[token] = RequestContext(project_id=str(entry["project_id"]),
                                       is_admin=role == "admin", roles=(role,))
    return tokens


class Authenticator:
    def __init__(self, strategy: str, token_file: str) -> None:
        self.strategy = strategy
        self.tokens = load_tokens(token_file) if strategy == "token" else {}

    def context_for(self, request: webob.Request) -> RequestContext:
        if self.strategy == "noauth":
            project = request.headers.get("X-Project-Id", "") or "admin"
            return RequestContext(project_id=project, is_admin=True, roles=("admin",))
        token = request.headers.get("X-Auth-Token")
        if not token or token not in self.tokens:
            raise errors.NotAuthenticated()
        return self.tokens[token]


def _json_response(status: int, body: Any) -> webob.Response:
    response = webob.Response(status=status, charset="utf-8")
    if body is None:
        response.content_type = None  # type: ignore[assignment]
        response.body = b""
    else:
        response.content_type = "application/json"
        response.body = json.dumps(body).encode("utf-8")
    return response


class ApiApplication:
    """The WSGI callable."""

    def __init__(self, services: Services, routes: Iterable[Route]) -> None:
        self.services = services
        self.auth = Authenticator(services.settings.auth_strategy, services.settings.token_file)
        self.routes = [(route, route.compile()) for route in routes]

    def _dispatch(self, request: webob.Request) -> webob.Response:
        path = request.path_info
        # openstacksdk may ask for "/v2.0/networks.json"; Neutron accepts the suffix.
        if path.endswith(".json"):
            path = path[: -len(".json")]
        matched_path = False
        for route, regex in self.routes:
            match = regex.match(path)
            if not match:
                continue
            matched_path = True
            if route.method != request.method:
                continue
            public = route.pattern in ("/", "/v2.0")
            context = (RequestContext("", False) if public
                       else self.auth.context_for(request))
            status, body = route.handler(ApiRequest(request, context, self.services),
                                         **match.groupdict())
            return _json_response(status, body)
        if matched_path:
            raise errors.MethodNotAllowed()
        raise errors.NotFound(f"The resource could not be found: {path}")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = webob.Request(environ)
        try:
            response = self._dispatch(request)
        except errors.NeutronError as exc:
            if exc.status >= 500:
                LOG.error("%s %s failed: %s", request.method, request.path, exc)
            response = _json_response(exc.status, exc.body())
        except Exception:
            LOG.exception("%s %s crashed", request.method, request.path)
            response = _json_response(500, errors.NeutronError(
                "Request failed: internal server error while processing your request.").body())
        return response(environ, start_response)
