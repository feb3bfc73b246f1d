"""The service layer: business logic, database transactions and event publishing per resource.

API handlers and the agent RPC call these modules; they take ``(services, context, ...)`` and
return dicts in the Neutron API's JSON shape. See ``docs/api.md`` for the event contract.
"""

from ryu_sched.resources.context import Context, admin_context

__all__ = ["Context", "admin_context"]
