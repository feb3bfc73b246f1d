"""Network namespaces: create/delete them and move the calling thread into one.

``netns(name)`` switches only the *calling OS thread* (``setns(2)`` on a network namespace is
per-thread). Sockets created and subprocesses started by that thread while inside belong to the
namespace; other threads are unaffected. Eventlet green threads all share one OS thread, so do
not hold ``netns()`` across a green-thread switch.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from ._run import run

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.setns.restype = ctypes.c_int


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns(CLONE_NEWNET) failed: {os.strerror(errno)}")


@contextlib.contextmanager
def netns(name: str) -> Iterator[None]:
    """Run the body with the calling thread inside network namespace ``/run/netns/<name>``.

    The thread's original namespace (``/proc/self/task/<tid>/ns/net``) is opened before the
    switch and restored on exit, also when the body raises.
    """
    original = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
    try:
        target = os.open(NETNS_DIR / name, os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(original)
    finally:
        os.close(original)


def netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def netns_inode(name: str) -> int | None:
    try:
        return os.stat(NETNS_DIR / name).st_ino
    except OSError:
        return None


def list_netns(prefix: str = "") -> list[str]:
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(prefix))


def add_netns(name: str) -> None:
    run(["ip", "netns", "add", name])
    run(["ip", "-n", name, "link", "set", "lo", "up"])


def delete_netns(name: str) -> None:
    if netns_exists(name):
        run(["ip", "netns", "delete", name], check=False)


def ns_argv(ns: str, argv: list[str] | tuple[str, ...]) -> list[str]:
    """``argv`` prefixed so that it runs inside namespace ``ns``."""
    return ["ip", "netns", "exec", ns, *argv]
