"""`/v2.0/rbac-policies`: thin handlers over :mod:`ryu_sched.resources.rbac_policies`."""

from ryu_sched.api.wsgi import Collection, Route, collection_routes
from ryu_sched.resources import rbac_policies as service

ROUTES: list[Route] = collection_routes(Collection(
    singular="rbac_policy", plural="rbac_policies", url_name="rbac-policies",
    page=service.page_rbac_policies, get=service.get_rbac_policy,
    create=service.create_rbac_policy, update=service.update_rbac_policy,
    delete=service.delete_rbac_policy))
