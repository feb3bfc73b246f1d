"""The base pipeline, the same on every switch (cookie kind BASE).

* priority 0 in every table: table-miss drop. Nothing is allowed unless a flow says so.
* priority 1 in ARP_RESPONDER: go on to L3_ENTRY; in L3_ENTRY: go on to L2_FORWARD. These two
  tables only pick out what they handle and let the rest through.
"""

from __future__ import annotations

from .cookies import BASE_COOKIE
from .spec import FlowSpec, GotoTable, Match
from .tables import PIPELINE, Table

PRIO_TABLE_MISS = 0
PRIO_PASS_THROUGH = 1

PASS_THROUGH = {Table.ARP_RESPONDER: Table.L3_ENTRY, Table.L3_ENTRY: Table.L2_FORWARD}


def base_flows() -> list[FlowSpec]:
    flows = [FlowSpec(table, PRIO_TABLE_MISS, Match(), (), BASE_COOKIE) for table in PIPELINE]
    flows += [FlowSpec(table, PRIO_PASS_THROUGH, Match(), (GotoTable(nxt),), BASE_COOKIE)
              for table, nxt in PASS_THROUGH.items()]
    return flows
