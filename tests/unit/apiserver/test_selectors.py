"""Label and field selectors parse, match and fail exactly as apimachinery's parsers do."""

from __future__ import annotations

import pytest

from runtime.apiserver.registry.selectors import (
    SelectorError,
    label_selector_from_dict,
    parse_field_selector,
    parse_label_selector,
)

LABELS = {"app": "web", "tier": "front", "version": "3", "empty": ""}


@pytest.mark.parametrize(
    ("sel", "expected"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app!=web", False),
        ("app!=db", True),
        ("missing!=x", True),  # != matches when the key is absent
        ("app in (web,db)", True),
        ("app in (db)", False),
        ("app notin (db)", True),
        ("missing notin (db)", True),
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("app=web,tier=front", True),
        ("app=web,tier=back", False),
        ("empty=", True),  # an empty value is valid and matches the empty label
        ("empty in ()", True),  # "()" is the set {""}
        ("version>2", True),
        ("version<3", False),
        ("missing>1", False),
        ("x in (in,notin)", False),  # keywords are plain values inside a set
        ("  app = web ,  tier in ( front ) ", True),
    ],
)
def test_label_selector_matches(sel: str, expected: bool) -> None:
    assert parse_label_selector(sel).matches(LABELS) is expected


def test_label_selector_none_labels_and_string_form() -> None:
    assert parse_label_selector("!a").matches(None)
    assert not parse_label_selector("a").matches(None)
    # Parsed requirements are sorted by key, as labels.Parse does.
    assert str(parse_label_selector("z=1,a in (c,b),!m")) == "a in (b,c),!m,z=1"


@pytest.mark.parametrize(
    ("sel", "message"),
    [
        ("app=", None),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("=x", "found '=', expected: !, identifier, or 'end of string'"),
        ("a,", "found '', expected: identifier after ','"),
        ("a in b", "unable to parse requirement: found 'b' expected: '('"),
        ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        (
            "a>x",
            "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, "
            "the value must be an integer",
        ),
        (
            "a=b$",
            'unable to parse requirement: values[0][a]: Invalid value: "b$": a valid label must be an '
            "empty string or consist of alphanumeric characters",
        ),
        (
            "-a=b",
            'unable to parse requirement: : Invalid value: "-a": name part must consist of alphanumeric',
        ),
        ("a/b/c", "a qualified name must consist of"),
        ("Ex.com/a=b", "prefix part a lowercase RFC 1123 subdomain"),
        ("a=" + "x" * 64, "must be no more than 63 characters"),
    ],
)
def test_label_selector_errors(sel: str, message: str | None) -> None:
    if message is None:
        parse_label_selector(sel)  # valid: empty value
        return
    with pytest.raises(SelectorError) as exc:
        parse_label_selector(sel)
    assert message in str(exc.value)


def test_label_selector_from_dict() -> None:
    sel = label_selector_from_dict(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "edge"]},
                {"key": "canary", "operator": "DoesNotExist"},
            ],
        }
    )
    assert sel.matches({"app": "web", "tier": "edge"})
    assert not sel.matches({"app": "web", "tier": "edge", "canary": "1"})
    assert not sel.matches({"app": "db", "tier": "edge"})
    # metav1: a nil selector selects nothing, an empty one everything.
    assert not label_selector_from_dict(None).matches({"a": "b"})
    assert label_selector_from_dict({}).matches({"a": "b"})
    with pytest.raises(SelectorError, match='"Bogus" is not a valid label selector operator'):
        label_selector_from_dict({"matchExpressions": [{"key": "a", "operator": "Bogus"}]})
    with pytest.raises(SelectorError, match="values set can't be empty"):
        label_selector_from_dict({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]})


POD = {
    "metadata": {"name": "p1", "namespace": "default"},
    "spec": {
        "nodeName": "edge-1",
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "serviceAccountName": "default",
    },
    "status": {"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}]},
}


@pytest.mark.parametrize(
    ("sel", "expected"),
    [
        ("spec.nodeName=edge-1", True),
        ("spec.nodeName==edge-1", True),
        ("spec.nodeName!=edge-1", False),
        ("spec.host=edge-1", True),  # legacy alias converted to spec.nodeName
        ("spec.nodeName=", False),
        ("status.phase=Running,metadata.namespace=default", True),
        ("status.phase!=Succeeded,status.phase!=Failed", True),
        ("status.podIP=10.0.0.5", True),
        ("spec.hostNetwork=false", True),
        ("status.nominatedNodeName=", True),
        ("metadata.name=p2", False),
    ],
)
def test_pod_field_selector(sel: str, expected: bool) -> None:
    assert parse_field_selector(sel, "pods").matches(POD) is expected


def test_unbound_pod_matches_empty_node_name() -> None:
    unbound = {"metadata": {"name": "x", "namespace": "default"}, "spec": {}, "status": {"phase": "Pending"}}
    assert parse_field_selector("spec.nodeName=", "pods").matches(unbound)


def test_field_selector_errors_use_kubernetes_messages() -> None:
    with pytest.raises(SelectorError, match=r"^field label not supported: spec.foo$"):
        parse_field_selector("spec.foo=x", "pods")
    with pytest.raises(SelectorError, match=r"^field label not supported: metadata.namespace$"):
        parse_field_selector("metadata.namespace=x", "nodes")  # nodes are cluster-scoped
    with pytest.raises(
        SelectorError,
        match=r'^"data.x" is not a known field selector: only "metadata.name", "metadata.namespace"$',
    ):
        parse_field_selector("data.x=1", "configmaps")
    with pytest.raises(SelectorError, match=r"^invalid selector: 'abc'; can't understand 'abc'$"):
        parse_field_selector("abc", "pods")
    with pytest.raises(SelectorError, match="invalid escape sequence"):
        parse_field_selector(r"metadata.name=a\b", "pods")


def test_field_selector_escapes_and_other_resources() -> None:
    sel = parse_field_selector(r"metadata.name=a\,b\=c", "configmaps")
    assert sel.matches({"metadata": {"name": "a,b=c", "namespace": "x"}})
    assert sel.requires_exact("metadata.name") == "a,b=c"
    ev = {
        "metadata": {"name": "e", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p1"},
        "reason": "Scheduled",
        "type": "Normal",
        "reportingComponent": "default-scheduler",
    }
    assert parse_field_selector(
        "involvedObject.kind=Pod,involvedObject.name=p1,type=Normal", "events"
    ).matches(ev)
    # `source` falls back to reportingComponent when source.component is empty.
    assert parse_field_selector("source=default-scheduler", "events").matches(ev)
    node = {"metadata": {"name": "n1"}, "spec": {"unschedulable": True}}
    assert parse_field_selector("spec.unschedulable=true", "nodes").matches(node)
    assert parse_field_selector("spec.unschedulable=false", "nodes").matches({"metadata": {"name": "n2"}})
    assert parse_field_selector("type=Opaque", "secrets").matches(
        {"metadata": {"name": "s"}, "type": "Opaque"}
    )
    assert parse_field_selector("", "pods").matches(POD)


@pytest.mark.parametrize("resource", ["pods", "nodes", "events", "secrets", "services", "namespaces"])
def test_matching_reads_the_same_fields_as_the_full_field_set(resource: str) -> None:
    """Matching reads single fields; they must agree with the full ToSelectableFields set."""
    from runtime.apiserver.registry.selectors import FIELD_SPECS

    spec = FIELD_SPECS[resource]
    samples: list[dict[str, object]] = [
        POD,
        {"metadata": {"name": "x"}},
        {
            "metadata": {"name": "e", "namespace": "n"},
            "involvedObject": {"kind": "Pod", "name": "p", "uid": "u"},
            "reason": "R",
            "type": "Warning",
            "source": {"component": "kubelet"},
            "reportingComponent": "rc",
        },
        {
            "metadata": {"name": "n"},
            "spec": {"unschedulable": True, "type": "NodePort", "clusterIP": "1.2.3.4"},
            "status": {"phase": "Active"},
            "type": "kubernetes.io/tls",
        },
    ]
    for obj in samples:
        full = spec.extract(dict(obj))
        for label in sorted(spec.labels - {"status.podIPs"}):
            want = full.get(label, "")
            sel = parse_field_selector(f"{label}={want}", resource)
            assert sel.matches(obj), (label, want)
