"""`/v2.0/subnets`: thin handlers over :mod:`ryu_sched.resources.subnets`."""

from ryu_sched.api.wsgi import Collection, Route, collection_routes
from ryu_sched.resources import subnets as service

ROUTES: list[Route] = collection_routes(Collection(
    singular="subnet", plural="subnets",
    page=service.page_subnets, get=service.get_subnet, create=service.create_subnet,
    update=service.update_subnet, delete=service.delete_subnet))
