"""Who is asking: the request context of each API call, by ``auth_strategy``.

- ``keystone``: the ``X-Auth-Token`` is validated by keystonemiddleware's ``auth_token``
  (configured in ``[keystone_authtoken]``, as for Neutron); the context is the project and
  roles Keystone reports for it.
- ``token``: a static JSON file maps tokens to a project and a role (tests and labs
  without Keystone).
- ``noauth``: every request is admin (labs).

Every authenticator answers :meth:`context_for` for one request; discovery documents never
ask (they are public), so the middleware is run per request by the authenticator instead
of wrapping the whole application. That also lets anything else on the API port (the
operator page) ask for a context with the same guarantees: identity headers are only ever
read from an environ that ``auth_token`` itself has just cleaned and filled, never from
what a client sent.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import webob

from ryu_sched import errors
from ryu_sched.config import Settings
from ryu_sched.resources.context import Context, Role

LOG = logging.getLogger(__name__)

AUTHTOKEN_GROUP = "keystone_authtoken"


class AuthStrategy(enum.StrEnum):
    NOAUTH = "noauth"
    TOKEN = "token"
    KEYSTONE = "keystone"


class Authenticator(Protocol):
    def context_for(self, request: webob.Request) -> Context: ...


class AuthRefused(errors.NeutronError):
    """The authentication middleware's own answer (401 or 503), passed on as it gave it."""

    def __init__(self, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        super().__init__(body.decode("utf-8", "replace") or f"HTTP {status}")
        self.status = status
        self.headers = [(k, v) for k, v in headers if k.lower() == "www-authenticate"]
        self.raw_body = body

    @property
    def error_type(self) -> str:
        return "NotAuthenticated" if self.status == 401 else "ServiceUnavailable"

    def body(self) -> Any:
        try:
            return json.loads(self.raw_body)
        except ValueError:
            return super().body()


def _require_reader(context: Context) -> Context:
    """A token with none of admin, member, reader on its project may do nothing."""
    if not context.may_read:
        raise errors.PolicyNotAuthorized(action="a role on the project (reader, member or "
                                                "admin)")
    return context


# --- noauth -------------------------------------------------------------------------------

class NoAuth:
    """Every request is admin, in the project named by ``X-Project-Id`` (else ``admin``)."""

    def context_for(self, request: webob.Request) -> Context:
        project = request.headers.get("X-Project-Id", "") or "admin"
        return Context(project_id=project, is_admin=True,
                       roles=(Role.ADMIN, Role.MEMBER, Role.READER))


# --- token file ---------------------------------------------------------------------------

_IMPLIED: dict[str, tuple[str, ...]] = {
    Role.ADMIN: (Role.ADMIN, Role.MEMBER, Role.READER),
    Role.MEMBER: (Role.MEMBER, Role.READER),
    Role.READER: (Role.READER,),
}


def load_tokens(path: str) -> dict[str, Context]:
    """Token file: ``{"<token>": {"project_id": "...", "role": "admin"|"member"|"reader"}}``
    (or ``"roles": [...]``). A role implies the ones below it, as Keystone's defaults do."""
    if not path:
        return {}
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    tokens: dict[str, Context] = {}
    for token, entry in data.items():
        named = entry.get("roles") or [entry.get("role", Role.MEMBER)]
        roles: list[str] = []
        for role in (str(r).lower() for r in named):
            roles.extend(_IMPLIED.get(role, (role,)))
        tokens[token] = Context.from_roles(str(entry["project_id"]), roles)
    return tokens


class TokenFile:
    def __init__(self, path: str) -> None:
        self.tokens = load_tokens(path)

    def context_for(self, request: webob.Request) -> Context:
        token = request.headers.get("X-Auth-Token")
        if not token or token not in self.tokens:
            raise errors.NotAuthenticated()
        return _require_reader(self.tokens[token])


# --- Keystone -----------------------------------------------------------------------------

_REACHED = "ryu_sched.auth.reached"


def _reached(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The application behind ``auth_token``: only notes that the request got through."""
    environ[_REACHED] = True
    start_response("204 No Content", [])
    return []


def keystone_conf(config_files: Sequence[str], config_dirs: Sequence[str] = ()) -> Any:
    """A private oslo.config object over the controller's configuration files, for
    keystonemiddleware to register and read ``[keystone_authtoken]`` in."""
    from oslo_config import cfg

    conf = cfg.ConfigOpts()
    conf(args=[], project="ryu-sched", default_config_files=list(config_files),
         default_config_dirs=list(config_dirs), validate_default_values=True)
    return conf


class KeystoneAuth:
    """Token validation by keystonemiddleware's ``auth_token``.

    Its HTTP calls to Keystone go through keystoneauth and requests; in the controller the
    framework's manager has monkey-patched the standard library (sockets, threads) before
    loading the app, so a validation waiting on Keystone yields to other green threads.
    Validated tokens are cached in memory (``token_cache_time``, default 300 s) unless
    ``memcached_servers`` is set.
    """

    def __init__(self, conf: Any) -> None:
        try:
            from keystonemiddleware import auth_token
        except ImportError as exc:   # pragma: no cover - a hard dependency
            raise RuntimeError("auth_strategy = keystone needs keystonemiddleware "
                               "(pip install keystonemiddleware)") from exc
        # The catalog header is large and unused here.
        self.protocol = auth_token.AuthProtocol(
            _reached, {"oslo_config_config": conf, "include_service_catalog": False})

    def context_for(self, request: webob.Request) -> Context:
        environ = {key: value for key, value in request.environ.items()
                   if key != "wsgi.input"}
        answer: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: Any = None) -> Callable[[bytes], None]:
            answer["status"], answer["headers"] = int(status.split(" ", 1)[0]), headers
            return lambda data: None

        chunks = self.protocol(environ, start_response)
        try:
            body = b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()
        if not environ.get(_REACHED):
            # auth_token answered itself: 401 (no or bad token) or 503 (Keystone down).
            raise AuthRefused(answer.get("status", 500), answer.get("headers", []), body)
        # With delay_auth_decision = true the request gets here either way.
        if environ.get("HTTP_X_IDENTITY_STATUS") != "Confirmed" or \
                environ.get("HTTP_X_SERVICE_IDENTITY_STATUS", "Confirmed") != "Confirmed":
            raise errors.NotAuthenticated()
        project = environ.get("HTTP_X_PROJECT_ID", "")
        if not project:
            # Domain- and system-scoped tokens: Neutron's rules are project-scoped.
            raise errors.PolicyNotAuthorized(action="a project-scoped token")
        roles = str(environ.get("HTTP_X_ROLES", "")).split(",")
        return _require_reader(Context.from_roles(project, roles))


def authenticator_for(settings: Settings) -> Authenticator:
    strategy = AuthStrategy(settings.auth_strategy)
    if strategy is AuthStrategy.KEYSTONE:
        return KeystoneAuth(keystone_conf(settings.config_files, settings.config_dirs))
    if strategy is AuthStrategy.TOKEN:
        return TokenFile(settings.token_file)
    return NoAuth()
