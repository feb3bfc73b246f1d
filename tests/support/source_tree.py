"""Run the controller and agents from a given checkout (``bench/failover.py --code DIR``).

``flows/`` and ``agents/`` install as ``ryu_sched.flows`` / ``ryu_sched.agents`` (setup.py's
``package_dir``), so putting a checkout first on ``PYTHONPATH`` gives its ``ryu_sched`` but
not its flows and agents: those still come from wherever the package was pip-installed from
(or from nowhere, when that checkout has moved). :func:`source_env` returns the environment
that makes a child process import all three from ``root``: ``root`` first on ``PYTHONPATH``,
plus a directory with a ``sitecustomize`` that maps ``ryu_sched.flows`` and
``ryu_sched.agents`` to the ``flows/`` and ``agents/`` beside the ``ryu_sched`` imported.
"""

from __future__ import annotations

import os
from pathlib import Path

SHIM = '''"""Written by tests/support/source_tree.py: ryu_sched.flows and ryu_sched.agents come from
the flows/ and agents/ directories beside the ryu_sched package that is imported."""
import importlib.util
import sys
from pathlib import Path

_SUBPACKAGES = {"ryu_sched.flows": "flows", "ryu_sched.agents": "agents"}


class _SourceTreeFinder:
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name not in _SUBPACKAGES:
            return None
        import ryu_sched

        directory = Path(ryu_sched.__file__).resolve().parents[1] / _SUBPACKAGES[name]
        init = directory / "__init__.py"
        if not init.is_file():
            return None
        return importlib.util.spec_from_file_location(
            name, init, submodule_search_locations=[str(directory)])


sys.meta_path.insert(0, _SourceTreeFinder)
'''


def write_shim(directory: Path) -> Path:
    """Write the ``sitecustomize`` into ``directory`` (created) and return the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(SHIM)
    return directory


def source_env(root: Path, shim_dir: Path) -> dict[str, str]:
    """Environment entries for a child process that runs the code of checkout ``root``."""
    root = root.resolve()
    if not (root / "ryu_sched" / "__init__.py").is_file():
        raise ValueError(f"{root} is not a ryu-sched checkout (no ryu_sched/__init__.py)")
    write_shim(shim_dir)
    return {"PYTHONPATH": os.pathsep.join((str(root), str(shim_dir)))}
