"""A small webob WSGI application: routing, JSON, policy checks and Neutron error bodies.

Resource modules declare ``ROUTES``: a list of :class:`Route`. A handler receives an
:class:`ApiRequest` plus the path parameters and returns ``(status, body_or_None)``.

Size: just over 400 lines: routing, list responses and the request pipeline (decode,
authenticate, authorise, dispatch, render errors) are one flow that reads best together;
bodies (body.py), auth (auth.py) and lists in SQL (resources/listing.py) are already apart.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import re
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

import eventlet
import webob

from ryu_sched import errors
from ryu_sched.api import auth
from ryu_sched.api import body as body_limits
from ryu_sched.resources import common, listing, policy
from ryu_sched.resources.context import Context as RequestContext
from ryu_sched.resources.if_match import if_match
from ryu_sched.services import Services

LOG = logging.getLogger(__name__)

Handler = Callable[..., tuple[int, Any]]


@dataclasses.dataclass(frozen=True)
class Route:
    method: str
    pattern: str              # e.g. "/v2.0/networks/{id}"
    handler: Handler
    public: bool = False      # answered without authentication (discovery documents)
    # Every method but GET needs a member or admin (resources.policy). ``action`` names the
    # refused rule; ``target``, for a write on one object, shows it first (with the path's
    # parameters) so that a reader gets 404 for what it may not see, as Neutron answers.
    action: str = ""
    target: Callable[..., object] | None = None

    def compile(self) -> re.Pattern[str]:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.pattern.rstrip("/"))
        return re.compile("^" + regex + r"/?$")


class ApiRequest:
    """What a handler sees of one HTTP request: its decoded path, query and body bytes."""

    def __init__(self, request: webob.Request, context: RequestContext,
                 services: Services, path: str = "",
                 params: list[tuple[str, str]] | None = None, raw_body: bytes = b"") -> None:
        self.request = request
        self.context = context
        self.services = services
        self.path = path or request.path_info
        self.params = params if params is not None else list(request.GET.items())
        self.raw_body = raw_body

    def json_body(self, resource: str | None = None) -> dict[str, Any]:
        """The parsed JSON body; with ``resource``, the object under that key."""
        if not self.raw_body:
            raise errors.HTTPBadRequest(msg="Malformed request body: body is empty")
        body_limits.check_media_type(self.request.environ.get("CONTENT_TYPE"))
        body = body_limits.decode_json(self.raw_body)
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

    def param(self, name: str) -> str | None:
        """The last value of a query parameter."""
        values = self.getall(name)
        return values[-1] if values else None

    def getall(self, name: str) -> list[str]:
        return [value for key, value in self.params if key == name]

    @property
    def query(self) -> dict[str, list[str]]:
        """Query parameters, each a list of values (Neutron allows repeated keys)."""
        result: dict[str, list[str]] = {}
        for key, value in self.params:
            result.setdefault(key, []).append(value)
        return result

    @property
    def fields(self) -> list[str]:
        return [f for f in self.getall("fields") if f]

    def filters(self) -> dict[str, list[str]]:
        """Query filters, without the paging/sorting/fields keys."""
        return {k: v for k, v in self.query.items() if k not in _NOT_FILTERS}


_NOT_FILTERS = frozenset({"fields", "limit", "marker", "sort_key", "sort_dir",
                          "page_reverse"})


# --- collections: list/show/create/update/delete over a service module ------------------------

PageFn = Callable[[Services, RequestContext, listing.ListQuery, listing.Finisher | None],
                  listing.Page]
GetFn = Callable[[Services, RequestContext, str], dict[str, Any]]
CreateFn = Callable[[Services, RequestContext, dict[str, Any]], dict[str, Any]]
UpdateFn = Callable[[Services, RequestContext, str, dict[str, Any]], dict[str, Any]]
DeleteFn = Callable[[Services, RequestContext, str], None]


@dataclasses.dataclass(frozen=True)
class Collection:
    singular: str
    plural: str
    page: PageFn
    get: GetFn
    create: CreateFn
    update: UpdateFn
    delete: DeleteFn
    #: The URL's name of the collection when it differs from the JSON key (``plural``):
    #: ``security-groups`` holds ``security_groups``.
    url_name: str = ""

    @property
    def path(self) -> str:
        return "/v2.0/" + (self.url_name or self.plural)


def _int_param(req: ApiRequest, name: str) -> int | None:
    value = req.param(name)
    if value in (None, ""):
        return None
    assert value is not None
    if not (value.isascii() and value.isdigit()):
        raise errors.HTTPBadRequest(
            msg=f"{name} must be a non-negative integer, not '{value}'")
    return int(value)


def _bool_param(req: ApiRequest, name: str) -> bool:
    value = req.param(name)
    if value in (None, ""):
        return False
    assert value is not None
    if value.lower() not in ("true", "false", "1", "0"):
        raise errors.HTTPBadRequest(msg=f"{name} must be true or false, not '{value}'")
    return value.lower() in ("true", "1")


def list_query(req: ApiRequest) -> listing.ListQuery:
    """Filters, ``sort_key``/``sort_dir``, ``limit``, ``marker`` and ``page_reverse``."""
    keys = [k for k in req.getall("sort_key") if k]
    dirs = [d for d in req.getall("sort_dir") if d]
    if len(dirs) > len(keys):
        raise errors.HTTPBadRequest(msg="The number of sort_keys and sort_dirs must be same")
    for direction in dirs:
        if direction not in ("asc", "desc"):
            raise errors.HTTPBadRequest(msg=f"{direction} is invalid attribute for sort_dir")
    sorts = tuple(listing.Sort(key, index < len(dirs) and dirs[index] == "desc")
                  for index, key in enumerate(keys))
    return listing.ListQuery(filters=req.filters(), sorts=sorts,
                             limit=_int_param(req, "limit"),
                             marker=req.param("marker") or None,
                             page_reverse=_bool_param(req, "page_reverse"))


def _link(req: ApiRequest, rel: str, marker: str, reverse: bool) -> dict[str, str]:
    query = [(k, v) for k, v in req.params if k not in ("marker", "page_reverse")]
    query.append(("marker", marker))
    if reverse:
        query.append(("page_reverse", "True"))
    href = (req.request.host_url + urllib.parse.quote(req.path) + "?"
            + urllib.parse.urlencode(query))
    return {"rel": rel, "href": href}


@dataclasses.dataclass(frozen=True)
class EncodedJson:
    """A response body already encoded (long lists are built from encoded items)."""

    data: bytes


def shown(req: ApiRequest, resource: str | None, item: dict[str, Any]) -> dict[str, Any]:
    """``item`` as ``req`` may see it: without admin-only attributes, then ``fields``."""
    if resource is not None:
        item = policy.shown(resource, item, req.context)
    return common.select_fields(item, req.fields)


def _encoder(req: ApiRequest, resource: str | None) -> listing.Finisher:
    def finish(batch: list[dict[str, Any]]) -> list[Any]:
        return [(item["id"], json.dumps(shown(req, resource, item))) for item in batch]
    return finish


def list_response(req: ApiRequest, col: Collection) -> EncodedJson:
    """A collection's page of ``req`` (see :func:`page_response`)."""
    return page_response(req, col.plural,
                         lambda query, finish: col.page(req.services, req.context, query,
                                                        finish),
                         resource=col.singular)


PageOf = Callable[[listing.ListQuery, listing.Finisher], listing.Page]


def page_response(req: ApiRequest, plural: str, page_of: PageOf,
                  resource: str | None = None) -> EncodedJson:
    """The page as JSON, ``fields`` applied, and ``<plural>_links`` when paging by ``limit``.

    Items are encoded batch by batch while they are read (see :data:`listing.Finisher`).
    ``next`` is there when items follow the page, ``previous`` when items precede it (the
    page started at a marker); with ``page_reverse`` the roles are as seen from the page.
    """
    query = list_query(req)
    page = page_of(query, _encoder(req, resource))
    items: list[tuple[str, str]] = page.items
    parts = ['{"', plural, '": [', ", ".join(text for _, text in items), "]"]
    links = []
    if query.limit and items:
        reverse = query.page_reverse and query.marker is not None
        if page.more or reverse:
            links.append(_link(req, "next", items[-1][0], reverse=False))
        if (query.marker is not None and not reverse) or (reverse and page.more):
            links.append(_link(req, "previous", items[0][0], reverse=True))
    if links:
        parts += [', "', plural, '_links": ', json.dumps(links)]
    parts.append("}")
    return EncodedJson("".join(parts).encode("utf-8"))


def collection_routes(col: Collection) -> list[Route]:
    def list_items(req: ApiRequest) -> tuple[int, Any]:
        return 200, list_response(req, col)

    def show(req: ApiRequest, id: str) -> tuple[int, Any]:
        item = col.get(req.services, req.context, id)
        return 200, {col.singular: shown(req, col.singular, item)}

    def create(req: ApiRequest) -> tuple[int, Any]:
        body = req.json_body()
        if col.plural in body and isinstance(body[col.plural], list) and len(body) == 1:
            # Bulk create: one transaction per item (not atomic, unlike Neutron), with a
            # yield between items so that a long bulk does not hold up other requests.
            entries = body[col.plural]
            if not all(isinstance(entry, dict) for entry in entries):
                raise errors.HTTPBadRequest(msg=f"Invalid {col.singular} in bulk body")
            created = []
            for index, entry in enumerate(entries):
                if index:
                    eventlet.sleep(0)
                created.append(shown(req, col.singular,
                                     col.create(req.services, req.context, entry)))
            return 201, {col.plural: created}
        attrs = req.json_body(col.singular)
        return 201, {col.singular: shown(req, col.singular,
                                         col.create(req.services, req.context, attrs))}

    def update(req: ApiRequest, id: str) -> tuple[int, Any]:
        attrs = req.json_body(col.singular)
        with if_match(req.request.headers, col.singular, id):
            return 200, {col.singular: shown(req, col.singular,
                                             col.update(req.services, req.context, id, attrs))}

    def delete(req: ApiRequest, id: str) -> tuple[int, Any]:
        with if_match(req.request.headers, col.singular, id):
            col.delete(req.services, req.context, id)
        return 204, None

    return [
        Route("GET", col.path, list_items),
        Route("POST", col.path, create, action=f"create_{col.singular}"),
        Route("GET", col.path + "/{id}", show),
        Route("PUT", col.path + "/{id}", update, action=f"update_{col.singular}",
              target=show),
        Route("DELETE", col.path + "/{id}", delete, action=f"delete_{col.singular}",
              target=show),
    ]


class InternalServerError(errors.NeutronError):
    type_name = "HTTPInternalServerError"
    message_format = "Request Failed: internal server error while processing your request."


def _json_response(status: int, body: Any) -> webob.Response:
    response = webob.Response(status=status, charset="utf-8")
    if body is None:
        response.content_type = None  # type: ignore[assignment]
        response.body = b""
    else:
        response.content_type = "application/json"
        response.body = (body.data if isinstance(body, EncodedJson)
                         else json.dumps(body).encode("utf-8"))
    return response


def _error_response(exc: errors.NeutronError) -> webob.Response:
    response = _json_response(exc.status, exc.body())
    # 401 from Keystone's middleware: WWW-Authenticate says where to get a token.
    response.headerlist.extend(getattr(exc, "headers", ()))
    return response


def decode_path(environ: dict[str, Any]) -> str:
    """PATH_INFO as text (WSGI hands it over as latin-1); bytes that are not UTF-8: 404."""
    raw = environ.get("PATH_INFO", "") or ""
    try:
        return str(raw).encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        raise errors.NotFound("The resource could not be found.") from None


def parse_query(query_string: str) -> list[tuple[str, str]]:
    """``key=value`` pairs in order; percent-escapes that are not UTF-8: 400."""
    try:
        return urllib.parse.parse_qsl(query_string, keep_blank_values=True,
                                      encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise errors.HTTPBadRequest(msg="Malformed query string: not valid UTF-8") from None


def _close_connection_after(environ: dict[str, Any]) -> None:
    """Tell eventlet's server the response is complete and the connection must close.

    Without this it would read and drop the rest of a refused body, however large, to
    keep the connection alive.
    """
    if "eventlet.input" in environ:
        from eventlet.wsgi import WSGI_LOCAL

        WSGI_LOCAL.already_handled = True


class ApiApplication:
    """The WSGI callable."""

    def __init__(self, services: Services, routes: Iterable[Route]) -> None:
        self.services = services
        self.auth = auth.authenticator_for(services.settings)
        self.routes = [(route, route.compile()) for route in routes]
        self.max_body = services.settings.api_max_request_body_size

    def _dispatch(self, environ: dict[str, Any]) -> webob.Response:
        path = decode_path(environ)
        params = parse_query(str(environ.get("QUERY_STRING", "") or ""))
        raw = body_limits.read_body(environ, self.max_body)
        # Handlers (and webob) see the body already read, as a plain stream.
        environ["wsgi.input"] = io.BytesIO(raw)
        environ["CONTENT_LENGTH"] = str(len(raw))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        request = webob.Request(environ)
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
            context = (RequestContext("", False, roles=()) if route.public
                       else self.auth.context_for(request))
            api_request = ApiRequest(request, context, self.services, path=path,
                                     params=params, raw_body=raw)
            if route.method != "GET" and not route.public and not context.may_write:
                if route.target is not None:
                    route.target(api_request, **match.groupdict())
                policy.require_write(context, route.action or
                                     f"{route.method} {route.pattern}")
            status, body = route.handler(api_request, **match.groupdict())
            return _json_response(status, body)
        if matched_path:
            raise errors.MethodNotAllowed()
        raise errors.NotFound("The resource could not be found.")

    def _refuse(self, environ: dict[str, Any], start_response: Callable[..., Any],
                exc: errors.NeutronError) -> Iterable[bytes]:
        """Answer a body we will not read, drop what the client still sends (bounded) and
        close the connection."""
        response = _error_response(exc)
        try:
            write = start_response(response.status,
                                   [*response.headerlist, ("Connection", "close")])
            write(response.body)
            body_limits.drain(environ)
        except OSError:
            pass  # the client has gone
        _close_connection_after(environ)
        return []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        method = str(environ.get("REQUEST_METHOD", ""))
        try:
            response = self._dispatch(environ)
        except (body_limits.RequestEntityTooLarge, body_limits.IncompleteBody) as exc:
            LOG.info("%s %r refused: %s", method, environ.get("PATH_INFO", ""), exc)
            return self._refuse(environ, start_response, exc)
        except errors.NeutronError as exc:
            if exc.status >= 500:
                LOG.error("%s %r failed: %s", method, environ.get("PATH_INFO", ""), exc)
            response = _error_response(exc)
        except Exception:
            # The traceback goes to the log, never to the client.
            LOG.exception("%s %r crashed", method, environ.get("PATH_INFO", ""))
            response = _error_response(InternalServerError())
        return response(environ, start_response)
