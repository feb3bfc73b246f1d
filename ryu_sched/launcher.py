"""``ryu-sched-controller``: run the framework's app manager with ryu_sched.app loaded.

With os-ken this is exactly ``osken-manager ryu_sched.app``. Choose the framework with
``RYU_SCHED_FRAMEWORK=ryu|os_ken``; unset, os-ken is used when installed, else Ryu.

Why a launcher at all: Ryu 4.34's ``ryu-manager`` cannot start on Python 3.11. Its
``ryu/cmd/manager.py`` imports ``ryu.app.wsgi``, whose class body runs
``from eventlet.wsgi import ALREADY_HANDLED``; eventlet removed that name in 0.30.3, and the
eventlet releases that still have it do not import on Python 3.11 (0.30.2: ``TypeError: cannot
set 'is_timeout' attribute of immutable type 'TimeoutError'``). The import happens before the
manager loads any app, so ``ryu_sched.app`` cannot fix it; this launcher restores the one name
before importing Ryu's manager. Ryu only compares a WSGI result against that sentinel in its
own WSGI server, which the manager starts only for apps that ask for a ``wsgi`` context
(ryu_sched serves its API with its own eventlet server), so any unique object will do.
That is the only patch Ryu 4.34 needs here; os-ken is run untouched.

Nothing here imports a framework at module level: the manager must import it itself, after
its eventlet monkey-patching.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Container, Mapping, Sequence
from types import ModuleType
from typing import Any

APP = "ryu_sched.app"
ENV_VAR = "RYU_SCHED_FRAMEWORK"
FRAMEWORKS = ("os_ken", "ryu")  # preference order when nothing is requested
_ALIASES = {"os_ken": "os_ken", "os-ken": "os_ken", "osken": "os_ken", "ryu": "ryu"}
_INSTALL_HINT = {
    "os_ken": "pip install 'os-ken>=3.1,<4'",
    "ryu": "PIP_CONSTRAINT=etc/constraints-ryu.txt pip install ryu==4.34",
}


class FrameworkError(ImportError):
    """The requested framework is unknown or not installed."""


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def requested_framework(environ: Mapping[str, str] | None = None) -> str | None:
    """The framework named by ``RYU_SCHED_FRAMEWORK`` (normalised), or None when unset."""
    value = (os.environ if environ is None else environ).get(ENV_VAR, "").strip().lower()
    if not value:
        return None
    try:
        return _ALIASES[value]
    except KeyError:
        raise FrameworkError(f"{ENV_VAR}={value!r}: expected one of ryu, os_ken") from None


def choose_framework(environ: Mapping[str, str] | None = None,
                     installed: Callable[[str], bool] | None = None) -> str:
    """``RYU_SCHED_FRAMEWORK`` if set (and installed), else os-ken, else Ryu."""
    installed = installed or _installed
    wanted = requested_framework(environ)
    for name in (wanted,) if wanted else FRAMEWORKS:
        if installed(name):
            return name
    if wanted:
        raise FrameworkError(f"{ENV_VAR}={wanted} but the {wanted} package is not installed "
                             f"({_INSTALL_HINT[wanted]})")
    raise FrameworkError("neither os-ken nor ryu is installed "
                         f"({_INSTALL_HINT['os_ken']}, or {_INSTALL_HINT['ryu']})")


def select_framework(loaded: Container[str],
                     requested: Callable[[], str | None] = requested_framework,
                     choose: Callable[[], str] = choose_framework) -> str:
    """compat's rule: the framework whose manager is running (its ``base.app_manager`` is in
    ``loaded``, the imported module names), else :func:`choose_framework`."""
    running = [name for name in FRAMEWORKS if f"{name}.base.app_manager" in loaded]
    if len(running) > 1:                      # both imported: the request decides
        wanted = requested()
        return wanted if wanted in running else running[0]
    if running:
        return running[0]
    return choose()


def manager_argv(args: Sequence[str]) -> list[str]:
    """The manager's arguments: the operator's, plus ``ryu_sched.app`` unless already named.

    Other apps given on the command line are loaded too; options and their values are
    passed through untouched.
    """
    out = list(args)
    if APP not in out:
        out.append(APP)
    return out


def restore_already_handled(eventlet_wsgi: Any) -> bool:
    """Give ``eventlet.wsgi`` back the ``ALREADY_HANDLED`` sentinel Ryu 4.34 imports.

    Returns True when it had to be added (eventlet >= 0.30.3).
    """
    if hasattr(eventlet_wsgi, "ALREADY_HANDLED"):
        return False
    eventlet_wsgi.ALREADY_HANDLED = object()
    return True


def prepare(framework: str) -> None:
    """Framework-specific fixes that must happen before its manager is imported."""
    if framework == "ryu":
        import eventlet.wsgi

        restore_already_handled(eventlet.wsgi)


def run_manager(framework: str, args: Sequence[str],
                import_module: Callable[[str], ModuleType] = importlib.import_module) -> Any:
    prepare(framework)
    manager = import_module(f"{framework}.cmd.manager")
    # oslo.config parses sys.argv inside the manager's main().
    sys.argv = [sys.argv[0] if sys.argv else "ryu-sched-controller", *args]
    return manager.main()


def main(argv: Sequence[str] | None = None) -> Any:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        framework = choose_framework()
    except FrameworkError as exc:
        raise SystemExit(f"ryu-sched-controller: {exc}") from None
    return run_manager(framework, manager_argv(args))


if __name__ == "__main__":
    main()
