"""`/v2.0/floatingips`: thin handlers over :mod:`ryu_sched.resources.floatingips`."""

from ryu_sched.api.wsgi import Collection, Route, collection_routes
from ryu_sched.resources import floatingips as service

ROUTES: list[Route] = collection_routes(Collection(
    singular="floatingip", plural="floatingips",
    page=service.page_floatingips, get=service.get_floatingip, create=service.create_floatingip,
    update=service.update_floatingip, delete=service.delete_floatingip))
