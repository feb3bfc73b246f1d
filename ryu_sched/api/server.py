"""Serve a WSGI app (the API, the metrics) on the eventlet hub."""

from __future__ import annotations

import logging
from typing import Any

import eventlet
import eventlet.wsgi

LOG = logging.getLogger(__name__)


class _QuietLog:
    def write(self, message: str) -> None:
        LOG.debug(message.rstrip())


class ApiServer:
    def __init__(self, app: Any, host: str, port: int, name: str = "Neutron API") -> None:
        self.app = app
        self.name = name
        self.socket = eventlet.listen((host, port), backlog=256)
        self.host, self.port = self.socket.getsockname()[:2]
        self._thread: Any = None

    def start(self) -> None:
        LOG.info("%s listening on %s:%s", self.name, self.host, self.port)
        self._thread = eventlet.spawn(
            eventlet.wsgi.server, self.socket, self.app, log=_QuietLog(),
            max_size=1000, socket_timeout=60,
            # eventlet's default (debug=True) sends a crash's traceback to the client.
            debug=False)

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.kill()
            self._thread = None
        self.socket.close()
