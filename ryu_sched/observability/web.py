"""The operator page (``/dashboard/`` on the API port) and the API timing middleware.

:class:`OperatorApp` wraps the Neutron API WSGI application:

- ``/dashboard/`` and its assets are static files shipped in the package (no CDN); they hold
  no data, so they are served to anyone;
- ``/dashboard/state`` is the JSON the page polls (a :class:`~.status.Status` plus the move
  timeline); ``/dashboard/actions/drain`` and ``/dashboard/actions/move`` are the page's two
  actions that the Neutron API has no single call for. All three are admin-only, checked by
  the API's own authenticator; everything else the page does (enable/disable) is a plain
  Neutron API call;
- every other request goes to the API, timed into ``ryu_sched_api_request_seconds``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from importlib import resources
from typing import Any, Protocol

import webob

from ryu_sched import errors
from ryu_sched.api import body as body_limits
from ryu_sched.observability.metrics import Metrics
from ryu_sched.observability.status import Status
from ryu_sched.resources.context import Context

LOG = logging.getLogger(__name__)

PREFIX = "/dashboard"
#: The page's action bodies are a few ids: anything bigger is refused (413).
MAX_ACTION_BODY = 4096
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_ASSETS = {"dashboard.html": "text/html", "dashboard.js": "text/javascript",
           "dashboard.css": "text/css"}


class OperatorActions(Protocol):
    """What the page can do beyond plain Neutron calls, and what it shows."""

    def status(self) -> Status: ...

    def timeline(self, limit: int) -> list[dict[str, Any]]: ...

    def drain(self, context: Context, agent_id: str) -> list[dict[str, Any]]: ...

    def move(self, context: Context, kind: str, object_id: str, from_agent_id: str,
             to_agent_id: str) -> dict[str, Any]: ...


def _asset(name: str) -> bytes:
    return resources.files("ryu_sched.observability").joinpath("static", name).read_bytes()


def resource_of(path: str, known: frozenset[str] | None = None) -> str:
    """The metric label of a request path: ``/v2.0/ports/<id>`` -> ``ports``. With
    ``known`` (the API's resources), anything else is ``other``: a client must not be able
    to mint new series by asking for made-up paths."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return "root"
    if parts[0] == "v2.0":
        parts = parts[1:]
    if not parts:
        return "versions"
    name = parts[0].removesuffix(".json")
    if known is not None:
        return name if name in known else "other"
    return name if name.replace("-", "").replace("_", "").isalpha() and len(name) < 40 \
        else "other"


def known_resources(api: Any) -> frozenset[str] | None:
    """The first path segment after ``/v2.0/`` of every route of the API application."""
    routes = getattr(api, "routes", None)
    if routes is None:
        return None
    names = set()
    for route, _regex in routes:
        parts = [p for p in route.pattern.split("/") if p]
        if len(parts) > 1 and parts[0] == "v2.0" and not parts[1].startswith("{"):
            names.add(parts[1])
    return frozenset(names)


class OperatorApp:
    def __init__(self, api: Any, actions: OperatorActions, metrics: Metrics,
                 context_for: Callable[[webob.Request], Context]) -> None:
        self.api = api
        self.actions = actions
        self.metrics = metrics
        self.context_for = context_for
        self.known = known_resources(api)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == PREFIX or path.startswith(PREFIX + "/"):
            request = webob.Request(environ)
            try:
                # Read (bounded) first: an unread body would be drained by the server to
                # keep the connection, however large.
                raw = b"" if request.method in ("GET", "HEAD") else \
                    body_limits.read_body(environ, MAX_ACTION_BODY)
            except (body_limits.RequestEntityTooLarge, body_limits.IncompleteBody) as exc:
                return _refuse(environ, start_response, exc)
            return self._dashboard(request, raw)(environ, start_response)
        started = time.perf_counter()
        status_holder: list[int] = []

        def recording_start(status: str, headers: Any, exc_info: Any = None) -> Any:
            status_holder.append(int(status.split(" ", 1)[0]))
            return start_response(status, headers, exc_info) if exc_info else \
                start_response(status, headers)

        body = self.api(environ, recording_start)
        method = str(environ.get("REQUEST_METHOD", ""))
        self.metrics.observe_api(method if method in _METHODS else "other",
                                 resource_of(path, self.known),
                                 status_holder[0] if status_holder else 0,
                                 time.perf_counter() - started)
        return body

    # --- the page ----------------------------------------------------------------------

    def _dashboard(self, request: webob.Request, raw: bytes) -> webob.Response:
        if request.path_info == PREFIX:
            # the page's assets are relative to /dashboard/
            return webob.Response(status=301, location=PREFIX + "/")
        path = request.path_info[len(PREFIX):].strip("/")
        try:
            if request.method == "GET" and path in ("", "index.html"):
                return _static("dashboard.html")
            if request.method == "GET" and path in _ASSETS:
                return _static(path)
            context = self.context_for(request)
            if not context.is_admin:
                raise errors.PolicyNotAuthorized(action="get_dashboard")
            if request.method == "GET" and path == "state":
                state = self.actions.status().to_json()
                state["timeline"] = self.actions.timeline(100)
                return _json(200, state)
            if request.method == "POST" and path == "actions/drain":
                body = _body(raw)
                moves = self.actions.drain(context, _text(body, "agent_id"))
                return _json(200, {"moves": moves})
            if request.method == "POST" and path == "actions/move":
                body = _body(raw)
                move = self.actions.move(context, _text(body, "kind"), _text(body, "id"),
                                         _text(body, "from_agent_id"),
                                         _text(body, "to_agent_id"))
                return _json(200, {"move": move})
            raise errors.NotFound(f"The resource could not be found: {request.path_info}")
        except errors.NeutronError as exc:
            return _json(exc.status, exc.body())
        except Exception:
            LOG.exception("operator page request %s %s failed", request.method, request.path)
            return _json(500, errors.NeutronError("Request failed: internal server error.")
                         .body())


def _static(name: str) -> webob.Response:
    response = webob.Response(body=_asset(name), content_type=_ASSETS[name], charset="utf-8")
    response.cache_control = "no-cache"
    return response


def _json(status: int, body: Any) -> webob.Response:
    return webob.Response(status=status, body=json.dumps(body).encode(),
                          content_type="application/json", charset="utf-8")


def _refuse(environ: dict[str, Any], start_response: Callable[..., Any],
            exc: errors.NeutronError) -> Iterable[bytes]:
    """Answer a body we will not read, and close the connection instead of draining it."""
    response = _json(exc.status, exc.body())
    try:
        write = start_response(response.status, [*response.headerlist, ("Connection", "close")])
        write(response.body)
        body_limits.drain(environ)
    except OSError:
        pass  # the client has gone
    if "eventlet.input" in environ:
        from eventlet.wsgi import WSGI_LOCAL

        WSGI_LOCAL.already_handled = True
    return []


def _body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise errors.HTTPBadRequest(msg="Malformed request body") from None
    if not isinstance(body, dict):
        raise errors.HTTPBadRequest(msg="Malformed request body: not a JSON object")
    return body


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value or len(value) > 255:
        raise errors.HTTPBadRequest(msg=f"'{key}' is required")
    return value
