"""Errors that know their HTTP status and Neutron type name.

The API renders any :class:`NeutronError` as ``{"NeutronError": {"type", "message", "detail"}}``
with :attr:`status`; handlers only raise.
"""

from __future__ import annotations


class NeutronError(Exception):
    status = 500
    type_name = "NeutronError"
    message_format = "An unknown exception occurred."

    def __init__(self, message: str | None = None, **kwargs: object) -> None:
        self.kwargs = kwargs
        if message is None:
            try:
                message = self.message_format % kwargs if kwargs else self.message_format
            except (KeyError, TypeError, ValueError):
                message = self.message_format
        self.message = message
        super().__init__(message)

    @property
    def error_type(self) -> str:
        return self.type_name if self.type_name != "NeutronError" else type(self).__name__

    def body(self) -> dict[str, dict[str, str]]:
        return {"NeutronError": {"type": self.error_type, "message": self.message,
                                 "detail": ""}}


class BadRequest(NeutronError):
    status = 400
    type_name = "BadRequest"
    message_format = "Bad %(resource)s request: %(msg)s."


class InvalidInput(BadRequest):
    type_name = "InvalidInput"
    message_format = "Invalid input for operation: %(error_message)s."


class NotAuthenticated(NeutronError):
    status = 401
    type_name = "NotAuthenticated"
    message_format = "Authentication required."


class PolicyNotAuthorized(NeutronError):
    status = 403
    type_name = "PolicyNotAuthorized"
    message_format = "Rule %(action)s is disallowed by policy."


class NotFound(NeutronError):
    status = 404
    type_name = "NotFound"
    message_format = "An object with the specified identifier was not found."


class ResourceNotFound(NotFound):
    """``<Kind>NotFound`` with Neutron's wording, e.g. ``NetworkNotFound``."""

    def __init__(self, kind: str, resource_id: str) -> None:
        self.kind = kind
        self.type_name = f"{kind}NotFound"
        words = "".join(" " + c.lower() if c.isupper() else c for c in kind).strip()
        super().__init__(f"{words.capitalize()} {resource_id} could not be found.")


class MethodNotAllowed(NeutronError):
    status = 405
    type_name = "HTTPMethodNotAllowed"
    message_format = "The method is not allowed for this resource."


class Conflict(NeutronError):
    status = 409
    type_name = "Conflict"
    message_format = "A conflict occurred."


class ServiceUnavailable(NeutronError):
    status = 503
    type_name = "ServiceUnavailable"
    message_format = "The service is unavailable."
