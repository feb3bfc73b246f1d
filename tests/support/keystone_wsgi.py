"""Serve Keystone's public WSGI application on 127.0.0.1 with the standard library.

Run by the Keystone virtualenv's Python (see tests/support/keystone.py), never imported by
the tests: ``python keystone_wsgi.py PORT``, with ``OS_KEYSTONE_CONFIG_FILES`` naming the
configuration file. One thread per request; stopped by a signal.
"""

from __future__ import annotations

import os
import socketserver
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

# Run as a script, this file's directory comes first on sys.path, and it holds the tests'
# keystone.py, which would hide the keystone package.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    port = int(sys.argv[1])
    del sys.argv[1:]                 # Keystone parses the command line as its own options
    from keystone.server import wsgi

    application = wsgi.initialize_public_application()
    server = make_server("127.0.0.1", port, application,
                         server_class=ThreadingWSGIServer, handler_class=QuietHandler)
    print(f"keystone listening on 127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
