"""What every agent shares: heartbeats, the RPC connection, resync on start and reconnect.

The agent's host-side state is reconciled, not patched: any notification from the controller
(or a reconnect, or a ``resync`` request) marks the agent dirty and one worker thread runs
:meth:`AgentBase.sync`, which fetches what the agent hosts and makes the host match it. That
makes restarts, missed notifications and crashes all the same, idempotent case.

With several controllers the client holds one connection at a time and moves to the next
controller when it loses it. A controller that stops answering without closing the
connection (frozen, cut off) is noticed by the heartbeat: a ``report_state`` that gets no
answer within :func:`heartbeat_timeout` drops the connection, so the agent is heard again
within about ``report_interval + heartbeat_timeout`` (well within agent_down_time).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from .config import AgentSettings
from .rpc_client import CallTimeout, Disconnected, RpcCallError, controller_client
from .system import Ovs

LOG = logging.getLogger(__name__)


def heartbeat_timeout(report_interval: float) -> float:
    """Seconds a heartbeat waits for its answer: the report interval, within 2..3 s."""
    return max(2.0, min(report_interval, 3.0))


class SyncIncomplete(Exception):
    """Part of a sync failed (logged); the rest was done. Retried shortly."""


class AgentBase:
    agent_type = ""
    binary = ""
    topic = ""

    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.ovs = Ovs(settings.ovsdb, settings.bridge, settings.ovs_socket_dir)
        self.rpc = controller_client(settings, on_notification=self._on_notification,
                                     on_connect=self._on_connect)
        self.start_flag = True
        self.stopping = threading.Event()
        self._beat_now = threading.Event()
        self._dirty = threading.Event()
        self.synced_once = threading.Event()
        self.sync_count = 0

    # --- to implement ---------------------------------------------------------------------

    def configurations(self) -> dict[str, Any]:
        return {}

    def sync(self) -> None:
        raise NotImplementedError

    def extra_threads(self) -> list[threading.Thread]:
        """Threads of the agent's own (started with the others, daemons)."""
        return []

    def closing(self) -> None:
        """The agent stops: close what :meth:`extra_threads` opened."""

    # --- state report -----------------------------------------------------------------------

    def agent_state(self) -> dict[str, Any]:
        conf = {"bridge": self.settings.bridge, **self.configurations()}
        dpid = self.ovs.datapath_id()
        if dpid:
            conf["datapath_id"] = dpid
        return {"agent_type": self.agent_type, "binary": self.binary,
                "host": self.settings.host, "topic": self.topic,
                "availability_zone": self.settings.availability_zone,
                "start_flag": self.start_flag, "configurations": conf}

    def report_state(self) -> None:
        state = self.agent_state()
        self.rpc.call("report_state", state,
                      timeout=heartbeat_timeout(self.settings.report_interval))
        self.start_flag = False

    def _heartbeat_loop(self) -> None:
        while not self.stopping.is_set():
            if self.rpc.connected:
                try:
                    self.report_state()
                except CallTimeout as exc:
                    LOG.warning("heartbeat failed: %s; leaving controller %s:%s", exc,
                                *self.rpc.address)
                    self.rpc.drop()
                except (Disconnected, RpcCallError) as exc:
                    LOG.warning("heartbeat failed: %s", exc)
                except Exception:
                    LOG.exception("heartbeat failed")
            self._beat_now.wait(self.settings.report_interval)
            self._beat_now.clear()

    def _on_connect(self) -> None:
        """A new connection: heartbeat at once (the controller may have restarted and be
        counting) and resync everything."""
        self._beat_now.set()
        self.request_sync()

    # --- notifications and resync -------------------------------------------------------------

    def _on_notification(self, method: str, params: list[Any]) -> None:
        LOG.debug("notification %s %.200r", method, params)
        self.request_sync()

    def request_sync(self) -> None:
        self._dirty.set()

    def _sync_loop(self) -> None:
        while not self.stopping.is_set():
            self._dirty.wait(self.settings.resync_interval)
            if self.stopping.is_set():
                return
            if not self.rpc.connected:
                self.rpc.wait_connected(1.0)
                continue
            self._dirty.clear()
            started = time.monotonic()
            try:
                self.sync()
            except (Disconnected, RpcCallError, SyncIncomplete) as exc:
                LOG.warning("resync failed (%s); will retry", exc)
                self.stopping.wait(0.5)
                self._dirty.set()
                continue
            except Exception:
                LOG.exception("resync failed; will retry")
                self.stopping.wait(1.0)
                self._dirty.set()
                continue
            self.sync_count += 1
            self.synced_once.set()
            LOG.info("resync %d done in %.2fs", self.sync_count, time.monotonic() - started)

    # --- process ---------------------------------------------------------------------------

    def run(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop())
        threads = [threading.Thread(target=self.rpc.connect_forever, daemon=True),
                   threading.Thread(target=self._heartbeat_loop, daemon=True),
                   threading.Thread(target=self._sync_loop, daemon=True),
                   *self.extra_threads()]
        for thread in threads:
            thread.start()
        LOG.info("%s on host %s started (controller%s %s%s)", self.agent_type,
                 self.settings.host, "s" if len(self.settings.controllers) > 1 else "",
                 ", ".join(f"{h}:{p}" for h, p in self.settings.controllers),
                 ", TLS" if self.settings.tls else "")
        self.stopping.wait()
        self.closing()
        self.rpc.close()

    def stop(self) -> None:
        self.stopping.set()
        self._dirty.set()
        self._beat_now.set()


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
