"""Custom resources against structural schemas (validation/schema/): the checks and wordings the
shared kube-validation corpus does not reach (it replays the common ones against the whole server)."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.apiserver.validation.schema import customresource, defaulting, structural, values
from runtime.apiserver.validation.schema.rules import CompileError, compile_expression

Obj = dict[str, Any]


def _errs(v: Any, s: Obj) -> list[tuple[str, str, str]]:
    out: list[Any] = []
    values.validate(v, s, "spec", out)
    return [(e.field, e.reason, e.detail) for e in out]


def test_bounds_lengths_and_formats_use_kube_openapi_words() -> None:
    s = {"type": "number", "maximum": 10, "exclusiveMaximum": True, "multipleOf": 0.5}
    assert _errs(10, s) == [
        ("spec", "FieldValueInvalid", "Invalid value: 10: spec in body should be less than 10")
    ]
    assert _errs(1.25, s) == [
        ("spec", "FieldValueInvalid", "Invalid value: 1.25: spec in body should be a multiple of 0.5")
    ]
    assert _errs("abcdef", {"type": "string", "maxLength": 3}) == [
        ("spec", "FieldValueTooLong", "Too long: may not be longer than 3")
    ]
    assert _errs("a", {"type": "string", "minLength": 2}) == [
        ("spec", "FieldValueInvalid", 'Invalid value: "a": spec in body should be at least 2 chars long')
    ]
    assert _errs("10.0.0.300", {"type": "string", "format": "ipv4"}) == [
        (
            "spec",
            "FieldValueTypeInvalid",
            'Invalid value: "10.0.0.300": spec in body must be of type ipv4: "10.0.0.300"',
        )
    ]
    assert _errs("anything", {"type": "string", "format": "int64"}) == []  # unsupported formats are dropped
    assert _errs(2.0, {"type": "integer"}) == []  # an integral float is an integer to kube-openapi
    assert _errs(None, {"type": "string"}) == [
        (
            "spec",
            "FieldValueTypeInvalid",
            'Invalid value: "null": spec in body must be of type string: "null"',
        )
    ]
    assert _errs(None, {"type": "string", "nullable": True}) == []


def test_objects_report_every_error_then_required() -> None:
    s = {
        "type": "object",
        "required": ["a"],
        "maxProperties": 1,
        "properties": {"b": {"type": "integer", "enum": [1, 2]}},
        "additionalProperties": False,
    }
    assert _errs({"b": 3, "c": 1}, s) == [
        ("spec", "FieldValueTooMany", "Too many: 2: must have at most 1 items"),
        ("spec.b", "FieldValueNotSupported", 'Unsupported value: 3: supported values: "1", "2"'),
        ("spec.a", "FieldValueRequired", "Required value"),
    ]


def test_defaults_fill_nested_objects_and_drop_non_nullable_nulls() -> None:
    s = {
        "type": "object",
        "properties": {
            "w": {"type": "object", "default": {}, "properties": {"h": {"type": "integer", "default": 24}}},
            "n": {"type": "string", "nullable": True},
            "t": {"type": "string"},
            "d": {"type": "string", "default": "x"},
            "items": {
                "type": "array",
                "items": {"type": "object", "properties": {"k": {"type": "integer", "default": 1}}},
            },
        },
    }
    obj: Obj = {"n": None, "t": None, "d": None, "items": [{}, {"k": 5}]}
    defaulting.default(obj, s)
    assert obj == {"n": None, "d": "x", "w": {"h": 24}, "items": [{"k": 1}, {"k": 5}]}


WIDGET: Obj = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "x-kubernetes-validations": [
                {"rule": "self.name.lowerAscii() == self.name", "message": "name must be lower case"},
                {"rule": "self.tags.isSorted()", "reason": "FieldValueForbidden", "fieldPath": ".tags"},
            ],
            "properties": {
                "name": {"type": "string"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "ports": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "port": {
                                "type": "integer",
                                "x-kubernetes-validations": [
                                    {"rule": "self == oldSelf", "message": "port is fixed"}
                                ],
                            },
                        },
                    },
                },
            },
        }
    },
}


def _cr(spec: Obj) -> Obj:
    return {"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "w"}, "spec": spec}


def test_cel_rules_with_reasons_library_functions_and_map_list_correlation() -> None:
    new = _cr(
        {"name": "Ab", "tags": ["b", "a"], "ports": [{"name": "a", "port": 2}, {"name": "b", "port": 9}]}
    )
    old = _cr({"name": "ab", "tags": ["a"], "ports": [{"name": "b", "port": 9}, {"name": "a", "port": 1}]})
    errs = customresource.errors(WIDGET, new, old, "")
    assert [(e.field, e.reason, e.detail) for e in errs] == [
        ("spec", "FieldValueInvalid", 'Invalid value: "object": name must be lower case'),
        ("spec.tags", "FieldValueForbidden", "Forbidden: failed rule: self.tags.isSorted()"),
        ("spec.ports[0].port", "FieldValueInvalid", 'Invalid value: "integer": port is fixed'),
    ]
    # on create the transition rule (oldSelf) is not evaluated
    assert [e.field for e in customresource.errors(WIDGET, new, None, "")] == ["spec", "spec.tags"]


def test_cel_is_skipped_after_a_blocking_error() -> None:
    errs = customresource.errors(WIDGET, _cr({"name": 5, "tags": []}), None, "")
    assert [e.field for e in errs] == ["spec.name", "<nil>"]


def test_cel_runtime_error_is_reported_with_the_rule() -> None:
    errs = customresource.errors(WIDGET, _cr({"tags": []}), None, "")
    assert len(errs) == 1 and errs[0].field == "spec"
    assert errs[0].detail.endswith("evaluating rule: name must be lower case")


def test_compile_error_has_cel_go_text() -> None:
    with pytest.raises(CompileError) as exc:
        compile_expression("self.a >>> 1")
    text = str(exc.value)
    assert text.startswith("ERROR: <input>:1:9: Syntax error: mismatched input '>'")
    assert "\n | self.a >>> 1\n | ........^" in text


def _crd(*schemas: Obj) -> Obj:
    versions = [
        {"name": f"v{i}", "served": True, "storage": i == 1, "schema": {"openAPIV3Schema": s}}
        for i, s in enumerate(schemas, start=1)
    ]
    return {"spec": {"versions": versions}}


def test_structural_checks_name_each_version_when_schemas_differ() -> None:
    loose = {"type": "object", "properties": {"a": {"type": "array"}, "b": {"not": {"nullable": True}}}}
    errs = structural.crd_schema_errors(_crd({"type": "object"}, loose))
    assert [(e.field, e.detail) for e in errs] == [
        ("spec.versions[1].schema.openAPIV3Schema.properties[a].items", "Required value: must be specified"),
        (
            "spec.versions[1].schema.openAPIV3Schema.properties[b].not.nullable",
            "Forbidden: must be false to be structural",
        ),
        (
            "spec.versions[1].schema.openAPIV3Schema.properties[b].type",
            "Required value: must not be empty for specified object fields",
        ),
    ]
    same = structural.crd_schema_errors(_crd({"properties": {}}, {"properties": {}}))
    assert [e.field for e in same] == ["spec.validation.openAPIV3Schema.type"]
    preserved = {"type": "object", "properties": {"x": {"x-kubernetes-preserve-unknown-fields": True}}}
    assert structural.crd_schema_errors(_crd(preserved)) == []


VOLUME = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "x-kubernetes-validations": [
                {"rule": "isQuantity(self.size)", "message": "size is no quantity"},
                {
                    "rule": "!isQuantity(self.size) || quantity(self.size).isLessThan(quantity(self.max))",
                    "message": "size must stay below max",
                },
                {"rule": "quantity(self.max) == quantity('1024Mi') || quantity(self.max).isInteger()"},
                {"rule": "quantity(self.max).add(quantity('500m')).compareTo(quantity(self.max)) == 1"},
                {"rule": "quantity('-2').sign() == -1 && quantity('2k').asInteger() == 2000"},
                {"rule": "quantity('1').sub(2).asApproximateFloat() == -1.0"},
                {"rule": "quantity(self.max).isGreaterThan(quantity('1'))"},
            ],
            "properties": {"size": {"type": "string"}, "max": {"type": "string"}},
        }
    },
}


def test_cel_quantity_library() -> None:
    def fields(spec: Obj) -> list[str]:
        return [e.detail for e in customresource.errors(VOLUME, _cr(spec), None, "")]

    assert fields({"size": "512Mi", "max": "1Gi"}) == []
    assert fields({"size": "2Gi", "max": "1Gi"}) == ['Invalid value: "object": size must stay below max']
    assert fields({"size": "lots", "max": "1Gi"}) == ['Invalid value: "object": size is no quantity']
    # 1.5 is no integer, and not 1024Mi (which equals 1Gi as a quantity, whatever its spelling)
    assert fields({"size": "1", "max": "1.5"}) == [
        "Invalid value: \"object\": failed rule: quantity(self.max) == quantity('1024Mi') || "
        "quantity(self.max).isInteger()"
    ]
