"""A range of port numbers as a few bitwise (value, mask) matches, not a flow per port.

``port_blocks(1000, 1999)`` gives the aligned power-of-two blocks that exactly cover the range,
largest first: a value matches the range iff ``value & mask == block`` for one of them. A range
of n numbers needs at most 2 * 16 - 2 blocks (30 for 1..65534); the whole 0..65535 is one block
with mask 0, which callers treat as "any port".
"""

from __future__ import annotations

WIDTH = 16
FULL = (1 << WIDTH) - 1


def port_blocks(low: int, high: int, width: int = WIDTH) -> list[tuple[int, int]]:
    """(value, mask) pairs whose union is exactly ``low..high`` (inclusive)."""
    full = (1 << width) - 1
    if not 0 <= low <= high <= full:
        raise ValueError(f"bad range {low}..{high} for {width} bits")
    blocks = []
    while low <= high:
        # The largest aligned block starting at low that does not pass high.
        size = low & -low if low else 1 << width
        while low + size - 1 > high:
            size >>= 1
        blocks.append((low, full & ~(size - 1)))
        low += size
    return blocks
