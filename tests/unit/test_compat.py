"""Framework selection (compat) and the launcher's argument handling.

Everything but the last class is pure: no framework is imported. The last class checks the
names ryu-sched uses against whichever framework this environment has (os-ken in the
default env, Ryu 4.34 in tox's ``ryu`` env).
"""

from __future__ import annotations

import sys
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from ryu_sched import launcher
from ryu_sched.launcher import (
    APP,
    FrameworkError,
    choose_framework,
    manager_argv,
    requested_framework,
    restore_already_handled,
    select_framework,
)


def _only(*names: str) -> Any:
    return lambda name: name in names


class TestRequestedFramework:
    @pytest.mark.parametrize("value, expected", [
        ("ryu", "ryu"), ("RYU", "ryu"), (" ryu ", "ryu"),
        ("os_ken", "os_ken"), ("os-ken", "os_ken"), ("osken", "os_ken"),
    ])
    def test_names(self, value: str, expected: str) -> None:
        assert requested_framework({"RYU_SCHED_FRAMEWORK": value}) == expected

    @pytest.mark.parametrize("environ", [{}, {"RYU_SCHED_FRAMEWORK": ""}])
    def test_unset(self, environ: dict[str, str]) -> None:
        assert requested_framework(environ) is None

    def test_unknown_name_is_an_error(self) -> None:
        with pytest.raises(FrameworkError, match="expected one of ryu, os_ken"):
            requested_framework({"RYU_SCHED_FRAMEWORK": "pox"})


class TestChooseFramework:
    def test_default_prefers_os_ken(self) -> None:
        assert choose_framework({}, _only("os_ken", "ryu")) == "os_ken"

    def test_default_falls_back_to_ryu(self) -> None:
        assert choose_framework({}, _only("ryu")) == "ryu"

    def test_request_overrides_preference(self) -> None:
        assert choose_framework({"RYU_SCHED_FRAMEWORK": "ryu"}, _only("os_ken", "ryu")) == "ryu"

    def test_requested_but_missing_says_how_to_install(self) -> None:
        with pytest.raises(FrameworkError, match=r"ryu package is not installed.*"
                                                 r"constraints-ryu\.txt"):
            choose_framework({"RYU_SCHED_FRAMEWORK": "ryu"}, _only("os_ken"))

    def test_requested_os_ken_is_not_silently_replaced_by_ryu(self) -> None:
        with pytest.raises(FrameworkError, match="os_ken package is not installed"):
            choose_framework({"RYU_SCHED_FRAMEWORK": "os-ken"}, _only("ryu"))

    def test_neither_installed(self) -> None:
        with pytest.raises(FrameworkError, match="neither os-ken nor ryu"):
            choose_framework({}, _only())

    def test_framework_error_is_an_import_error(self) -> None:
        assert issubclass(FrameworkError, ImportError)


class TestSelectFramework:
    """The rule compat applies to ``sys.modules`` when it is imported."""

    def test_running_manager_wins_over_request_and_preference(self) -> None:
        loaded = {"ryu.base.app_manager"}
        assert select_framework(loaded, lambda: "os_ken", lambda: "os_ken") == "ryu"
        loaded = {"os_ken.base.app_manager"}
        assert select_framework(loaded, lambda: "ryu", lambda: "ryu") == "os_ken"

    def test_both_loaded_request_decides(self) -> None:
        loaded = {"ryu.base.app_manager", "os_ken.base.app_manager"}
        assert select_framework(loaded, lambda: "ryu", lambda: "os_ken") == "ryu"
        assert select_framework(loaded, lambda: None, lambda: "ryu") == "os_ken"

    def test_nothing_running_uses_the_launcher_rule(self) -> None:
        assert select_framework(set(), lambda: "ryu", lambda: "ryu") == "ryu"
        # an imported package is not a running manager
        assert select_framework({"ryu", "ryu.lib"}, lambda: None, lambda: "os_ken") == "os_ken"

    def test_request_not_consulted_under_a_running_manager(self) -> None:
        def bad_request() -> str:
            raise AssertionError("RYU_SCHED_FRAMEWORK read under a running manager")

        assert select_framework({"ryu.base.app_manager"}, bad_request) == "ryu"


class TestManagerArgv:
    def test_app_appended(self) -> None:
        assert manager_argv(["--config-file", "/etc/ryu-sched/ryu_sched.conf"]) == [
            "--config-file", "/etc/ryu-sched/ryu_sched.conf", APP]

    @pytest.mark.parametrize("args", [
        ["--ofp-listen-host", "0.0.0.0"],            # a dotted value is not an app
        ["--config-file", "ryu_sched.cfg"],          # nor a config file without a slash
        ["--config-file", "ryu.ini", "--log-file", "ctl.log"],
        ["--version"],
        [],
    ])
    def test_app_appended_whatever_the_option_values(self, args: list[str]) -> None:
        out = manager_argv(args)
        assert out[:-1] == args and out[-1] == APP

    def test_not_duplicated(self) -> None:
        args = [APP, "--config-file", "x.conf"]
        assert manager_argv(args) == args

    def test_other_apps_kept(self) -> None:
        args = ["--config-file", "x.conf", "ryu.app.ofctl_rest"]
        assert manager_argv(args) == [*args, APP]

    def test_input_not_mutated(self) -> None:
        args = ["--config-file", "x.conf"]
        manager_argv(args)
        assert args == ["--config-file", "x.conf"]


class TestEventletFix:
    def test_added_when_missing(self) -> None:
        wsgi = SimpleNamespace()
        assert restore_already_handled(wsgi) is True
        sentinel = wsgi.ALREADY_HANDLED
        assert sentinel is not None
        assert restore_already_handled(wsgi) is False
        assert wsgi.ALREADY_HANDLED is sentinel

    def test_existing_one_kept(self) -> None:
        original = object()
        wsgi = SimpleNamespace(ALREADY_HANDLED=original)
        assert restore_already_handled(wsgi) is False
        assert wsgi.ALREADY_HANDLED is original


class TestMain:
    @pytest.fixture()
    def calls(self, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str]]]:
        seen: list[tuple[str, list[str]]] = []
        monkeypatch.setattr(launcher, "run_manager",
                            lambda framework, args: seen.append((framework, list(args))))
        monkeypatch.setattr(launcher, "_installed", _only("os_ken", "ryu"))
        return seen

    def test_default_os_ken(self, calls: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("RYU_SCHED_FRAMEWORK", raising=False)
        launcher.main(["--config-file", "a.conf"])
        assert calls == [("os_ken", ["--config-file", "a.conf", APP])]

    def test_ryu_requested(self, calls: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("RYU_SCHED_FRAMEWORK", "ryu")
        launcher.main(["--config-file", "a.conf"])
        assert calls == [("ryu", ["--config-file", "a.conf", APP])]

    def test_bad_request_exits_with_message(self, calls: list[Any],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("RYU_SCHED_FRAMEWORK", "nox")
        with pytest.raises(SystemExit, match=r"ryu-sched-controller: .*nox"):
            launcher.main([])
        assert calls == []

    def test_run_manager_sets_argv_and_patches_only_ryu(
            self, monkeypatch: pytest.MonkeyPatch) -> None:
        prepared: list[str] = []
        monkeypatch.setattr(launcher, "prepare", prepared.append)
        monkeypatch.setattr(sys, "argv", ["ryu-sched-controller", "ignored"])
        seen_argv: list[list[str]] = []
        manager = ModuleType("fake.cmd.manager")
        manager.main = lambda: seen_argv.append(list(sys.argv))  # type: ignore[attr-defined]
        imported: list[str] = []

        def import_module(name: str) -> ModuleType:
            imported.append(name)
            return manager

        launcher.run_manager("ryu", ["--config-file", "a.conf", APP], import_module)
        assert prepared == ["ryu"] and imported == ["ryu.cmd.manager"]
        assert seen_argv == [["ryu-sched-controller", "--config-file", "a.conf", APP]]

    def test_prepare_leaves_os_ken_alone(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setitem(sys.modules, "eventlet.wsgi", None)  # importing it would fail
        launcher.prepare("os_ken")


class TestInstalledFramework:
    """The names ryu-sched takes from the framework exist in the one installed here."""

    def test_names(self) -> None:
        from ryu_sched import compat

        assert compat.App is getattr(compat.app_manager, compat.APP_CLASS[compat.FRAMEWORK])
        assert compat.App.__module__ == f"{compat.FRAMEWORK}.base.app_manager"
        parser, ofp, nx = compat.ofproto_v1_3_parser, compat.ofproto_v1_3, compat.nicira_ext
        for name in ("NXActionCT", "NXActionNAT", "NXActionRegMove", "OFPFlowMod", "OFPMatch",
                     "OFPActionSetField", "OFPActionPushVlan", "OFPPortDescStatsRequest"):
            assert hasattr(parser, name), name
        assert ofp.OFP_VERSION == 4
        assert nx.NX_CT_F_COMMIT and nx.NX_CT_RECIRC_NONE
        for name in ("spawn", "kill", "sleep", "Event", "Queue", "QueueEmpty"):
            assert hasattr(compat.hub, name), name
        assert compat.CONF is compat.cfg_module.CONF
        assert compat.OFPRoleRequest is parser.OFPRoleRequest
        assert compat.EventRoleReply is compat.ofp_event.EventOFPRoleReply
        assert (compat.ROLE_EQUAL, compat.ROLE_MASTER, compat.ROLE_SLAVE) == (1, 2, 3)
        assert (compat.ROLE_REQUEST_FAILED, compat.ROLE_STALE) == (11, 0)
