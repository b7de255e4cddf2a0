"""deploy/grafana/silver-auth-dashboard.json: it parses, every query names metrics the service exports,
and every metric the service exports has a panel."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from silver_auth.core.metrics import METRIC_NAMES

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "silver-auth-dashboard.json"
SAMPLE_SUFFIXES = re.compile(r"_(?:total|bucket|sum|count)$")


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def _expressions(dashboard: dict[str, Any]) -> list[str]:
    queries = [t["expr"] for p in _panels(dashboard) for t in p.get("targets", [])]
    queries += [v["definition"] for v in dashboard["templating"]["list"] if v.get("definition")]
    return queries


def _families(expression: str) -> set[str]:
    """The metric families an expression reads (`silver_x_total` and `silver_x_bucket` are `silver_x`)."""
    return {SAMPLE_SUFFIXES.sub("", name) for name in re.findall(r"\bsilver_[a-z0-9_]+", expression)}


def test_the_dashboard_parses_and_is_grafana_shaped() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    panels = _panels(dashboard)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]), panel["title"]
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}"  # the dashboard's datasource variable
            expr = target["expr"]
            assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), expr
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource", "instance"]


def test_every_query_reads_metrics_the_service_exports() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = _expressions(dashboard)
    assert len(expressions) > 15
    unknown = {name for expr in expressions for name in _families(expr)} - METRIC_NAMES
    assert not unknown, f"the dashboard queries metrics the service does not export: {unknown}"
    for expr in expressions:
        assert _families(expr), f"a query that reads none of the service's metrics: {expr}"


def test_every_metric_the_service_exports_has_a_panel() -> None:
    used = {name for expr in _expressions(json.loads(DASHBOARD.read_text())) for name in _families(expr)}
    assert used == METRIC_NAMES
