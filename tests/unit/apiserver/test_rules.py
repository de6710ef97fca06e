"""Built-in validation rules beyond the shared corpus: cron schedules as robfig/cron reads them, time
zones, the error body's rendering (duplicates collapsed, brackets), rules the corpus does not reach."""

from __future__ import annotations

import pytest

from runtime.apiserver.validation import rules
from runtime.apiserver.validation.rules import core, cron, pods, workloads
from runtime.apiserver.validation.rules.fielderrors import invalid, required


@pytest.mark.parametrize(
    "schedule",
    [
        "0 3 * * *",
        "*/15 * * * *",
        "0 0 1 jan,jul *",
        "0 9-17/2 * * mon-fri",
        "@hourly",
        "@every 5m",
        "5 4 * * sun",
    ],
)
def test_standard_schedules_parse(schedule: str) -> None:
    cron.parse_standard(schedule)


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("every day", "expected exactly 5 fields, found 2: [every day]"),
        ("61 * * * *", "end of range (61) above maximum (59): 61"),
        ("0 0 0 * *", "beginning of range (0) below minimum (1): 0"),
        ("5-2 * * * *", "beginning of range (5) beyond end of range (2): 5-2"),
        ("*/0 * * * *", "step of range should be a positive number: */0"),
        ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
        ("@fortnightly", "unrecognized descriptor: @fortnightly"),
    ],
)
def test_bad_schedules_say_what_cron_says(schedule: str, message: str) -> None:
    with pytest.raises(cron.CronError) as err:
        cron.parse_standard(schedule)
    assert str(err.value) == message


def test_time_zones() -> None:
    assert cron.time_zone_error("Europe/Berlin") is None
    assert cron.time_zone_error("Mars/Olympus") == "unknown time zone Mars/Olympus"
    assert cron.time_zone_error("../etc") == "unknown time zone ../etc"
    assert "explicit time zone" in (cron.time_zone_error("Local") or "")


def test_error_body_collapses_repeated_messages_but_keeps_every_cause() -> None:
    same = invalid("metadata.labels", "a b", "bad")
    err = rules.invalid_error("Pod", "", "p", [same, same])
    assert err.message == 'Pod "p" is invalid: metadata.labels: Invalid value: "a b": bad'
    assert err.details is not None and len(err.details["causes"]) == 2
    two = rules.invalid_error("Deployment", "apps", "d", [same, required("spec.selector")])
    assert two.message.endswith('[metadata.labels: Invalid value: "a b": bad, spec.selector: Required value]')
    assert list(two.details or {}) == ["name", "group", "kind", "causes"]


def test_init_container_names_are_unique_with_the_regular_ones() -> None:
    spec = {
        "containers": [{"name": "a", "image": "x"}],
        "initContainers": [{"name": "a", "image": "x"}],
    }
    errs = pods.pod_spec(spec, "spec")
    assert [(e.field, e.reason) for e in errs] == [("spec.initContainers[0].name", "FieldValueDuplicate")]


def test_quantities_refused_before_validation() -> None:
    assert rules.decode_error(
        "", "Pod", {"spec": {"containers": [{"resources": {"limits": {"cpu": "lots"}}}]}}
    )
    template = {"template": {"spec": {"containers": [{"resources": {"requests": {"memory": "1Gi"}}}]}}}
    assert rules.decode_error("apps", "Deployment", {"spec": template}) is None
    bad = {
        "jobTemplate": {
            "spec": {"template": {"spec": {"containers": [{"resources": {"limits": {"x": "?"}}}]}}}
        }
    }
    assert rules.decode_error("batch", "CronJob", {"spec": bad})


def test_secret_base64_position() -> None:
    assert core.base64_error({"data": {"k": "not base64!"}}) == "illegal base64 data at input byte 3"
    assert core.base64_error({"data": {"k": "aGVsbG8="}}) is None


def test_immutable_configmap_may_not_be_made_mutable() -> None:
    old = {"immutable": True, "data": {"a": "1"}}
    errs = core.configmap({"data": {"a": "1"}}, old, "")
    assert [(e.field, e.reason) for e in errs] == [("immutable", "FieldValueForbidden")]


def test_cronjob_job_template_restart_policy() -> None:
    cj = {
        "spec": {
            "schedule": "@daily",
            "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}},
        }
    }
    errs = workloads.cronjob(cj, None, "")
    assert [e.field for e in errs] == ["spec.jobTemplate.spec.template.spec.restartPolicy"]


def test_secret_size_counts_decoded_bytes() -> None:
    """1 MiB of data is the most a Secret holds: base64 text of exactly that passes, one byte more not."""
    import base64

    exact = {"data": {"blob": base64.b64encode(b"x" * (1 << 20)).decode()}}
    assert core.secret(exact, None, "") == []
    over = {"data": {"blob": base64.b64encode(b"x" * ((1 << 20) + 1)).decode()}}
    assert [(e.field, e.reason) for e in core.secret(over, None, "")] == [("data", "FieldValueTooLong")]


def test_a_jobs_template_and_a_claims_spec_are_immutable() -> None:
    job = {
        "spec": {
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "a"}]}}
        }
    }
    changed = {
        "spec": {
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "b"}]}}
        }
    }
    assert [(e.field, e.reason) for e in workloads.job(changed, job, "") if e.field == "spec.template"] == [
        ("spec.template", "FieldValueInvalid")
    ]
    assert workloads.job(job, job, "") == []
    claim = {"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    grown = {"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}}}
    [refusal] = [e.message() for e in core.pvc(grown, claim, "")]
    head, diff = refusal.split("\n", 1)
    assert (
        head == "spec: Forbidden: spec is immutable after creation except resources.requests for bound claims"
    )
    assert diff.startswith("\u00a0\u00a0core.PersistentVolumeClaimSpec{\n")  # go-cmp's diff follows
    assert core.pvc(grown, {**claim, "status": {"phase": "Bound"}}, "") == []
