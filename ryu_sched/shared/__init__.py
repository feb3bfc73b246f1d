"""What the controller and the agents both speak: the vocabulary and the agent wire protocol.

This package imports only the standard library (and msgpack in the wire module), so the agents
can use it without pulling in any controller code (an import-linter contract checks that).
"""
