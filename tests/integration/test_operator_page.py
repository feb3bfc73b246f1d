"""The operator page in a real headless browser (chromium through selenium) against a real
controller process with simulated agents over RPC: sign in with an admin token, watch an
agent die and its networks move without reloading, disable an agent from the page.
Screenshots are saved under $ARTIFACTS_DIR (or the test's tmp dir) and named in the output."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import artifacts_dir, headless_chromium
from tests.support.controller import ControllerProcess, wait_until
from tests.support.simagent import DHCP, Fleet, SimAgent, seed_objects

pytestmark = pytest.mark.integration

DOWN = 2
TOKENS = {"admin-token": {"project_id": "ops", "role": "admin"}}


@pytest.fixture
def ctl(tmp_path: Path) -> Iterator[ControllerProcess]:
    with ControllerProcess(tmp_path / "ctl", {"agent_down_time": DOWN,
                                              "heartbeat_flush_interval": 0.2},
                           tokens=TOKENS) as proc:
        yield proc


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    with headless_chromium(tmp_path / "chromium") as driver:
        yield driver


@pytest.fixture
def shots(request: pytest.FixtureRequest, tmp_path: Path,
          capsys: pytest.CaptureFixture[str]) -> Callable[[Any, str], Path]:
    directory = artifacts_dir(tmp_path / "screenshots")

    def shoot(driver: Any, name: str) -> Path:
        path = directory / f"{request.node.name}-{name}.png"
        assert driver.save_screenshot(str(path)), f"no screenshot {path}"
        with capsys.disabled():
            print(f"\nscreenshot: {path}")
        return path

    return shoot


def until(driver: Any, condition: Callable[[Any], Any], timeout: float, what: str) -> Any:
    """Poll the page (not sleep) until ``condition`` holds; stale elements (the page
    redraws every second) just mean "try again"."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    def guarded(d: Any) -> Any:
        try:
            return condition(d)
        except StaleElementReferenceException:
            return False

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(guarded)
    except TimeoutException:
        footer = driver.find_element("id", "error").text
        raise AssertionError(f"timed out after {timeout}s waiting for {what} "
                             f"(page error: {footer!r})") from None


def agent_rows(driver: Any) -> dict[str, dict[str, str]]:
    rows = driver.find_elements("css selector", "#agents tbody tr")
    return {row.get_attribute("data-agent-host"): {
        "alive": row.get_attribute("data-alive"), "id": row.get_attribute("data-agent-id"),
        "text": row.text} for row in rows}


def timeline_rows(driver: Any, kind: str) -> list[dict[str, str]]:
    rows = driver.find_elements("css selector", f'#timeline tr[data-move-kind="{kind}"]')
    return [{"object": row.get_attribute("data-object-id"),
             "from": row.get_attribute("data-from-host"),
             "reason": row.get_attribute("data-reason")} for row in rows]


def click_in_row(driver: Any, host: str, action: str, timeout: float) -> None:
    """Click a row's button once, retrying only when the row was redrawn under us."""
    from selenium.common.exceptions import StaleElementReferenceException

    def clicked(d: Any) -> bool:
        try:
            d.find_element("css selector",
                           f'#agents tr[data-agent-host="{host}"] '
                           f'button[data-action="{action}"]').click()
            return True
        except StaleElementReferenceException:
            return False

    until(driver, clicked, timeout, f"{action} button of {host} clicked")


def test_operator_page_shows_agents_failover_and_disables_an_agent(browser, ctl, shots):
    rpc = (ctl.host, ctl.rpc_port)
    agents = [SimAgent(rpc, f"dhcp-{i}", DHCP) for i in range(3)]
    with Fleet(agents, interval=0.3) as fleet:
        nets, _ = seed_objects(f"sqlite:///{ctl.workdir / 'state' / 'ryu_sched.sqlite'}",
                               networks=6)

        def load() -> dict[str, int]:
            listed = ctl.request("GET", "/v2.0/agents", token="admin-token")[1]["agents"]
            return {a["host"]: a["load"] for a in listed}

        wait_until(lambda: sum(load().values()) == len(nets), 15, 0.1, "networks placed")

        # --- sign in: the page asks for a token when the API says 401 -----------------
        browser.get(f"{ctl.url}/dashboard/")
        until(browser, lambda d: d.find_element("id", "auth").is_displayed(), 20,
              "the token form")
        browser.find_element("id", "token").send_keys("admin-token")
        browser.find_element("css selector", "#auth button[type=submit]").click()
        until(browser, lambda d: d.find_element("id", "summary")
              .get_attribute("data-state") == "ready", 10, "the page to load its state")
        rows = until(browser, lambda d: r if len(r := agent_rows(d)) == 3 else None, 10,
                     "three agent rows")
        assert {h: r["alive"] for h, r in rows.items()} == {a.host: "true" for a in agents}
        placement_rows = browser.find_elements("css selector", "#placements tbody tr")
        assert len(placement_rows) == len(nets)
        shots(browser, "agents")

        # --- an agent dies: its row turns dead and its moves appear, without a reload -
        browser.execute_script("window.notReloaded = true;")
        victim = agents[0]
        lost = load()[victim.host]
        assert lost > 0
        fleet.kill(victim)
        until(browser, lambda d: agent_rows(d)[victim.host]["alive"] == "false",
              DOWN + 5, f"{victim.host} shown dead")
        moves = until(browser, lambda d: (m := [r for r in timeline_rows(d, "network")
                                                if r["from"] == victim.host]) and
                      len(m) == lost and m, DOWN + 10, "the failover's moves in the timeline")
        assert {m["reason"] for m in moves} == {"failover"}
        assert {m["object"] for m in moves} <= set(nets)
        until(browser, lambda d: any(r["from"] == victim.host
                                     for r in timeline_rows(d, "failover")), 10,
              "the failover's summary in the timeline")
        assert browser.execute_script("return window.notReloaded === true;")
        assert "dead" in agent_rows(browser)[victim.host]["text"]
        shots(browser, "failover")

        # --- disable an agent from the page: the API shows it ------------------------
        target = agents[1]
        target_id = agent_rows(browser)[target.host]["id"]
        click_in_row(browser, target.host, "toggle", 10)
        wait_until(lambda: ctl.request("GET", f"/v2.0/agents/{target_id}",
                                       token="admin-token")[1]["agent"]["admin_state_up"]
                   is False, 10, 0.1, "the agent disabled in the API")
        until(browser, lambda d: "disabled" in agent_rows(d)[target.host]["text"], 10,
              "the row shown disabled")
        assert browser.execute_script("return window.notReloaded === true;")
        shots(browser, "disabled")
