"""The operator page's WSGI layer over a real registry: static page for anyone, state and
actions for admins only (the API's own authenticator), bounded action bodies, API timing
with a bounded label set; and the metrics listener's WSGI app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import webob
from prometheus_client.parser import text_string_to_metric_families

from ryu_sched.api import build_app
from ryu_sched.observability.actions import ControllerActions
from ryu_sched.observability.metrics import Metrics
from ryu_sched.observability.server import metrics_app
from ryu_sched.observability.web import MAX_ACTION_BODY, OperatorApp
from ryu_sched.services import Services
from tests.unit.registry.test_agent_scheduler_service import world

TOKENS = {"adm": {"project_id": "p0", "role": "admin"},
          "mem": {"project_id": "p1", "role": "member"}}


@pytest.fixture
def page(tmp_path: Path) -> Any:
    w, _ = world(auth_strategy="token", token_file=_token_file(tmp_path))
    metrics = Metrics()
    actions = ControllerActions(w.services)
    metrics.set_status_source(actions.status)
    api = build_app(w.services)
    return w, metrics, OperatorApp(api, actions, metrics, api.auth.context_for)


def _token_file(tmp_path: Path) -> str:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps(TOKENS))
    return str(path)


def call(app: OperatorApp, method: str, path: str, token: str | None = None,
         body: Any = None, raw: bytes | None = None) -> webob.Response:
    request = webob.Request.blank(path, method=method)
    if token:
        request.headers["X-Auth-Token"] = token
    if raw is not None or body is not None:
        request.body = raw if raw is not None else json.dumps(body).encode()
        request.content_type = "application/json"
    return request.get_response(app)


def test_the_page_is_static_and_public_its_state_is_admin_only(page):
    w, _, app = page
    w.agents(2)
    assert call(app, "GET", "/dashboard").status_int == 301
    html = call(app, "GET", "/dashboard/")
    assert html.status_int == 200 and b"dashboard.js" in html.body
    assert call(app, "GET", "/dashboard/dashboard.js").content_type == "text/javascript"
    assert call(app, "GET", "/dashboard/state").status_int == 401
    assert call(app, "GET", "/dashboard/state", "mem").status_int == 403
    state = call(app, "GET", "/dashboard/state", "adm").json
    assert [a["host"] for a in state["agents"]] == ["h0", "h1"]
    assert state["timeline"] == [] and state["unhosted"] == {"network": 0, "router": 0}
    assert call(app, "GET", "/dashboard/nothing", "adm").status_int == 404


def test_drain_and_move_from_the_page(page):
    w, _, app = page
    (a0,) = w.agents(1)
    net = w.network()
    w.reg.reconcile()
    (a1,) = w.agents(1, prefix="new")
    assert call(app, "POST", "/dashboard/actions/drain", "mem", {"agent_id": a0}) \
        .status_int == 403
    moved = call(app, "POST", "/dashboard/actions/drain", "adm", {"agent_id": a0}).json
    assert [m["resource_id"] for m in moved["moves"]] == [net]
    body = {"kind": "network", "id": net, "from_agent_id": a1, "to_agent_id": a0}
    assert call(app, "POST", "/dashboard/actions/move", "adm", body).json["move"][
        "reason"] == "manual"
    assert w.hosts("network", net) == {a0: 1}
    assert call(app, "POST", "/dashboard/actions/move", "adm",
                {**body, "kind": "toaster"}).status_int == 400
    assert call(app, "POST", "/dashboard/actions/move", "adm",
                {"kind": "network"}).status_int == 400
    assert call(app, "POST", "/dashboard/actions/drain", "adm", raw=b"[1]").status_int == 400
    too_big = call(app, "POST", "/dashboard/actions/drain", "adm",
                   raw=b" " * (MAX_ACTION_BODY + 1))
    assert too_big.status_int == 413 and too_big.headers["Connection"] == "close"
    reasons = [e["reason"] for e in call(app, "GET", "/dashboard/state", "adm")
               .json["timeline"]]
    assert reasons == ["manual", "drain"]


def test_api_requests_are_timed_with_a_bounded_label_set(page):
    _, metrics, app = page
    call(app, "GET", "/v2.0/networks", "adm")
    call(app, "GET", "/v2.0/networks/abc", "adm")
    call(app, "GET", "/v2.0/made-up-thing", "adm")
    call(app, "BREW", "/v2.0/networks", "adm")
    samples = {(s.labels["method"], s.labels["resource"], s.labels["status"]): s.value
               for f in text_string_to_metric_families(_scrape(metrics))
               for s in f.samples if s.name == "ryu_sched_api_request_seconds_count"}
    assert samples == {("GET", "networks", "200"): 1, ("GET", "networks", "404"): 1,
                       ("GET", "other", "404"): 1, ("other", "networks", "405"): 1}


def _scrape(metrics: Metrics) -> str:
    response = webob.Request.blank("/metrics").get_response(metrics_app(metrics))
    assert response.status_int == 200
    assert response.content_type == "text/plain"
    return str(response.text)


def test_the_metrics_app_serves_metrics_only_at_its_path():
    w, _ = world()
    metrics = Metrics(lambda: ControllerActions(w.services).status())
    names = {f.name for f in text_string_to_metric_families(_scrape(metrics))}
    assert {"ryu_sched_agent_up", "ryu_sched_moves", "ryu_sched_leader"} <= names
    assert webob.Request.blank("/other").get_response(metrics_app(metrics)).status_int == 404


def test_without_a_registry_the_state_is_empty_not_an_error(tmp_path):
    w, _ = world()
    bare = Services(settings=w.services.settings, db=w.db)
    metrics = Metrics()
    api = build_app(bare)
    app = OperatorApp(api, ControllerActions(bare), metrics, api.auth.context_for)
    state = call(app, "GET", "/dashboard/state").json
    assert state["agents"] == [] and state["leader"] is True
