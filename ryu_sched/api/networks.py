"""`/v2.0/networks`: thin handlers over :mod:`ryu_sched.resources.networks`."""

from ryu_sched.api.wsgi import Collection, Route, collection_routes
from ryu_sched.resources import networks as service

ROUTES: list[Route] = collection_routes(Collection(
    singular="network", plural="networks",
    page=service.page_networks, get=service.get_network, create=service.create_network,
    update=service.update_network, delete=service.delete_network))
