"""``ryu-sched-controller``: run the framework's app manager with ryu_sched.app loaded.

With os-ken this is exactly ``osken-manager ryu_sched.app``. With Ryu 4.34 on Python >= 3.10
``ryu-manager`` cannot start: it imports ``eventlet.wsgi.ALREADY_HANDLED``, which eventlet
removed in 0.30.3, while the eventlet releases that still have it do not run on Python 3.11.
The launcher restores that one name (a sentinel object, which is all Ryu uses it for) before
importing Ryu's manager. Choose the framework with ``RYU_SCHED_FRAMEWORK=ryu|os_ken``;
by default os-ken is used when installed.
"""

from __future__ import annotations

import importlib
import os
import sys

APP = "ryu_sched.app"


def _patch_eventlet_for_ryu() -> None:
    import eventlet.wsgi

    if not hasattr(eventlet.wsgi, "ALREADY_HANDLED"):
        eventlet.wsgi.ALREADY_HANDLED = object()  # type: ignore[attr-defined]


def _framework() -> str:
    wanted = os.environ.get("RYU_SCHED_FRAMEWORK", "")
    if wanted:
        return wanted
    try:
        importlib.import_module("os_ken")
    except ImportError:
        return "ryu"
    return "os_ken"


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not any(a.endswith(".py") or (not a.startswith("-") and "." in a and "/" not in a
                                     and not a.endswith(".conf")) for a in args):
        args.append(APP)
    framework = _framework()
    if framework == "ryu":
        _patch_eventlet_for_ryu()
    manager = importlib.import_module(f"{framework}.cmd.manager")
    sys.argv = [sys.argv[0], *args]
    manager.main()


if __name__ == "__main__":
    main()
