"""Typed twin values at the edge: an int checked against a model's bounds (KubeEdge's sample model is
INT with minimum "1" and maximum "100")."""

from __future__ import annotations

import pytest

from runtime.edge.devices.values import BadValue, parse


def test_int_within_and_outside_the_models_bounds() -> None:
    assert parse("42", "int", "1", "100") == "42"
    assert parse("1", "int", "1", "100") == "1"
    with pytest.raises(BadValue, match="minimum is 1"):
        parse("0", "int", "1", "100")
    with pytest.raises(BadValue, match="maximum is 100"):
        parse("101", "int", "1", "100")
    assert parse("99.5", "float", "1", "100") == "99.5"
