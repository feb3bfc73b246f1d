"""Run the project from a given checkout, whatever is pip-installed.

``setup.py`` installs ``flows/`` and ``agents/`` as ``ryu_sched.flows`` and
``ryu_sched.agents`` (``package_dir``). ``PYTHONPATH=TREE`` makes ``ryu_sched`` come from TREE,
but those two would still come from wherever the editable install points (or from nowhere).
:func:`env_for` writes a ``sitecustomize.py`` that maps them to TREE's own directories and
returns the environment for a process run from TREE; :func:`use` does the same for this
process. Benchmarks that compare two trees (``--code``) run each tree's own pipeline.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

#: Packages that live at the top of a checkout but install inside ``ryu_sched``.
MAPPED = {"ryu_sched.flows": "flows", "ryu_sched.agents": "agents"}

SITECUSTOMIZE = '''\
import importlib.machinery
import sys

_TREE = {tree!r}
_MAPPED = {mapped!r}


class _TreeFinder:
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name not in _MAPPED:
            return None
        return importlib.machinery.PathFinder.find_spec(name, [_TREE])


sys.meta_path.insert(0, _TreeFinder)
'''


class _TreeFinder:
    tree = ""

    @classmethod
    def find_spec(cls, name: str, path: Any = None, target: Any = None) -> Any:
        if name not in MAPPED:
            return None
        return importlib.machinery.PathFinder.find_spec(name, [cls.tree])


def use(tree: Path) -> None:
    """Import ``ryu_sched.flows``/``ryu_sched.agents`` of ``tree`` in this process."""
    _TreeFinder.tree = str(tree)
    if _TreeFinder not in sys.meta_path:
        sys.meta_path.insert(0, _TreeFinder)


def env_for(tree: Path, scratch: Path | None = None) -> dict[str, str]:
    """``PYTHONPATH`` for a process run from ``tree`` (its cwd must be ``tree``: ``python -m``
    puts the working directory first on ``sys.path``)."""
    hooks = Path(tempfile.mkdtemp(prefix="code-tree-", dir=scratch))
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE.format(
        tree=str(Path(tree).resolve()),
        mapped=sorted(MAPPED)))
    return {"PYTHONPATH": os.pathsep.join([str(Path(tree).resolve()), str(hooks)])}
