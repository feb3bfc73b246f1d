"""What the controller and the agents both speak: the vocabulary and the agent wire protocol.

``vocabulary`` (names), ``wire`` (frames, encoding, errors), ``client`` (the one RPC client),
``tls`` (mutual TLS contexts). This package imports only the standard library and msgpack,
so the agents can use it without pulling in any controller code
(``tests/unit/rpc/test_wire.py`` checks that, for this package and for the agents).
"""
