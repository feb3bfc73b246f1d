"""API resource module (to be filled in)."""

from ryu_sched.api.wsgi import Route

ROUTES: list[Route] = []
