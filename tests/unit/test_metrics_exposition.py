"""The exposition functions of the edge and the API server: label values escaped (through labels that
carry free text here: the outbox-drop kind and twin kinds come from internal dicts, so the collector is
fed directly), the promtool checks of tests/fixtures/promcheck.py catching what they must, the bounded
message labels, and the Grafana dashboard using only documented series."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.exposition import generate_latest

from runtime.apiserver.http.metrics import ApiMetrics
from runtime.edge.metrics import EdgeMetrics
from runtime.protocol.resource import metric_labels
from tests.fixtures import REPO, promcheck

NASTY = 'a"b\\c\nd'


def test_edge_label_values_with_quotes_backslashes_newlines_are_escaped() -> None:
    m = EdgeMetrics(lambda: {("sent", "insert", "pod"): 3})
    status = {
        "cloud": {"connected": True, "reconnects": 2, "outbox_dropped": {NASTY: 4}},
        "devices": {"messages": {NASTY: 5}, "rejected": {"404": 1}},
    }
    body, ctype = m.exposition(status)
    text = body.decode()
    assert ctype.startswith("text/plain")
    assert 'kind="a\\"b\\\\c\\nd"' in text  # escaped on the wire, one line per sample
    got = {
        (s.name, s.labels.get("kind")): s.value
        for f in promcheck.families(text)
        for s in f.samples
        if "kind" in s.labels
    }
    assert got == {
        ("kedge_edge_outbox_dropped_total", NASTY): 4,
        ("kedge_edge_twin_messages_total", NASTY): 5,
    }
    assert promcheck.lint(text) == []


def test_apiserver_labels_escaped_and_latency_recorded() -> None:
    m = ApiMetrics(CollectorRegistry())
    m.observe(("get", "example.com", NASTY, ""), 200, 0.02)
    m.observe(("watch", "", "pods", ""), 200, None)  # long-running: counted, not timed
    text = m.exposition()[0].decode()
    samples = [s for f in promcheck.families(text) for s in f.samples]
    count = next(s for s in samples if s.name == "kedge_apiserver_request_duration_seconds_count")
    assert count.labels["resource"] == NASTY and count.value == 1
    watch = [s for s in samples if s.labels.get("verb") == "watch"]
    assert [s.name for s in watch if not s.name.endswith("_created")] == ["kedge_apiserver_requests_total"]
    assert promcheck.lint(text) == []


def test_lint_reports_what_promtool_reports() -> None:
    r = CollectorRegistry()
    Counter("kedge_x_milliseconds", "", registry=r).inc()  # no help, non-base unit
    text = (
        "# HELP kedge_bad_total gauge\n# TYPE kedge_bad_total gauge\nkedge_bad_total 1\n"
        "# HELP kedge_raw a counter without the suffix\n# TYPE kedge_raw counter\nkedge_raw 1\n"
        "# HELP kedgeCamel camel\n# TYPE kedgeCamel gauge\nkedgeCamel 1\n"
        "# HELP kedge_requests_gauge x\n# TYPE kedge_requests_gauge gauge\nkedge_requests_gauge 1\n"
    )
    problems = " ".join(promcheck.lint(generate_latest(r).decode() + text))
    for want in (
        "kedge_x_milliseconds_total: no help text",
        "use base unit instead of milliseconds",
        'kedge_bad_total: non-counter metrics should not have "_total" suffix',
        'kedge_raw: counter metrics should have "_total" suffix',
        "kedgeCamel: metric names should be written in 'snake_case'",
        "kedge_requests_gauge: metric name should not include type 'gauge'",
    ):
        assert want in problems


def test_message_labels_are_bounded() -> None:
    assert metric_labels("insert", "default/pod/web") == ("insert", "pod")
    assert metric_labels("x" * 50, "default/" + "y" * 50 + "/z") == ("other", "other")


def test_grafana_dashboard_uses_only_documented_series() -> None:
    board = json.loads((Path(REPO) / "docs" / "grafana-fleet.json").read_text())
    documented = set()
    for role in ("cloud", "edge", "apiserver"):
        documented |= set(promcheck.documented(role))
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 8
    for expr in exprs:
        names = set(re.findall(r"\bkedge_[a-z0-9_]+", expr))
        assert names, expr
        for n in names:
            base = re.sub(r"_(bucket|count|sum)$", "", n)
            assert n in documented or base in documented, f"{n} in {expr!r} is not a documented series"
