"""The flows test beds import each other as top-level modules (``from flows_testbed import``,
as pytest imports the files of tests/unit/flows, which is no package); the programmer's tests
use them too, also when run on their own."""

from __future__ import annotations

import sys
from pathlib import Path

FLOWS_TESTS = str(Path(__file__).resolve().parent.parent / "flows")
if FLOWS_TESTS not in sys.path:
    sys.path.append(FLOWS_TESTS)
