"""`/v2.0/ports`: thin handlers over :mod:`ryu_sched.resources.ports`."""

from ryu_sched.api.wsgi import Collection, Route, collection_routes
from ryu_sched.resources import ports as service

ROUTES: list[Route] = collection_routes(Collection(
    singular="port", plural="ports",
    page=service.page_ports, get=service.get_port, create=service.create_port,
    update=service.update_port, delete=service.delete_port))
