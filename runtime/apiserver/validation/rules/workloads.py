"""apps and batch rules (pkg/apis/apps/validation, pkg/apis/batch/validation): replica counts, the
selector and its template, the restart policies each controller allows, immutable fields, status."""

from __future__ import annotations

import copy
from typing import Any

from runtime.apiserver.registry.selectors import SelectorError, label_selector_from_dict
from runtime.apiserver.validation.rules import cron, meta, pods
from runtime.apiserver.validation.rules.fielderrors import (
    FieldError,
    GoText,
    forbidden,
    go_int_or_string,
    go_string_map,
    go_value,
    invalid,
    not_supported,
    required,
)
from runtime.apiserver.validation.rules.gostruct import go_struct

Obj = dict[str, Any]

MISMATCH = "`selector` does not match template `labels`"
STS_FORBIDDEN = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', "
    "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
)


def go_selector(sel: Any) -> GoText:
    """%#v of a v1.LabelSelector (match expressions shown only as present or nil)."""
    sel = sel if isinstance(sel, dict) else {}
    exprs = sel.get("matchExpressions")
    shown = (
        "[]v1.LabelSelectorRequirement(nil)" if exprs is None else f"[]v1.LabelSelectorRequirement{{{exprs}}}"
    )
    labels = go_string_map(sel.get("matchLabels")).text
    return GoText(f"v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{shown}}}")


def _template_for_selector(spec: Obj, *, restart: list[str], kind_empty: str) -> list[FieldError]:
    """The selector (required, not empty, valid) and ValidatePodTemplateSpecForReplicaSet."""
    errs: list[FieldError] = []
    sel = spec.get("selector")
    template = spec.get("template")
    if not isinstance(sel, dict):
        errs.append(required("spec.selector"))
        return errs + pods.pod_template(template, "spec.template")
    errs += meta.label_map(sel.get("matchLabels"), "spec.selector.matchLabels")
    if not sel.get("matchLabels") and not sel.get("matchExpressions"):
        errs.append(invalid("spec.selector", go_selector(sel), f"empty selector is invalid for {kind_empty}"))
    try:
        selector = label_selector_from_dict(sel)
    except (SelectorError, ValueError):
        errs.append(invalid("spec.selector", go_selector(sel), "invalid label selector"))
        return errs
    if not isinstance(template, dict):
        return [*errs, required("spec.template")]
    tlabels = (template.get("metadata") or {}).get("labels")
    if not selector.empty() and not selector.matches(tlabels):
        errs.append(invalid("spec.template.metadata.labels", go_string_map(tlabels), MISMATCH))
    errs += pods.pod_template(template, "spec.template")
    rp = (template.get("spec") or {}).get("restartPolicy")
    if restart and rp is not None and rp not in restart:
        errs.append(not_supported("spec.template.spec.restartPolicy", rp, restart))
    return errs


def _strategy(strategy: Any) -> list[FieldError]:
    ru = (strategy or {}).get("rollingUpdate") if isinstance(strategy, dict) else None
    if not isinstance(ru, dict):
        return []
    mu, ms = ru.get("maxUnavailable"), ru.get("maxSurge")

    def zero(v: Any) -> bool:
        return v in (0, "0%", None)

    if zero(mu) and zero(ms) and "maxUnavailable" in ru:
        path = "spec.strategy.rollingUpdate.maxUnavailable"
        return [invalid(path, go_int_or_string(mu), "may not be 0 when `maxSurge` is 0")]
    return []


def deployment(new: Obj, old: Obj | None, sub: str) -> list[FieldError]:
    if sub == "status":
        return _replica_status(new.get("status"), ready_label="readyReplicas")
    spec = meta.part(new, "spec")
    errs = meta.object_meta(new)
    errs += meta.nonnegative(spec.get("replicas"), "spec.replicas")
    errs += _template_for_selector(spec, restart=["Always"], kind_empty="deployment")
    errs += _strategy(spec.get("strategy"))
    for f in ("minReadySeconds", "revisionHistoryLimit", "progressDeadlineSeconds"):
        errs += meta.nonnegative(spec.get(f), f"spec.{f}")
    errs += _immutable_selector(spec, old)
    return errs


def replicaset(new: Obj, old: Obj | None, sub: str) -> list[FieldError]:
    if sub == "status":
        return _replica_status(new.get("status"), ready_label="readyReplicas")
    spec = meta.part(new, "spec")
    errs = meta.object_meta(new)
    errs += meta.nonnegative(spec.get("replicas"), "spec.replicas")
    errs += meta.nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    errs += _template_for_selector(spec, restart=["Always"], kind_empty="deployment")
    return errs + _immutable_selector(spec, old)


def daemonset(new: Obj, old: Obj | None, sub: str) -> list[FieldError]:
    if sub == "status":
        return []
    spec = meta.part(new, "spec")
    errs = meta.object_meta(new) + _template_for_selector(spec, restart=["Always"], kind_empty="daemonset")
    return errs + _immutable_selector(spec, old)


def statefulset(new: Obj, old: Obj | None, sub: str) -> list[FieldError]:
    if sub == "status":
        return []
    spec = meta.part(new, "spec")
    errs = meta.object_meta(new) + meta.nonnegative(spec.get("replicas"), "spec.replicas")
    errs += _template_for_selector(spec, restart=["Always"], kind_empty="statefulset")
    if old is not None:
        allowed = (
            "replicas",
            "ordinals",
            "template",
            "updateStrategy",
            "persistentVolumeClaimRetentionPolicy",
        )
        a = copy.deepcopy(spec)
        b = copy.deepcopy(old.get("spec") or {})
        for f in (*allowed, "minReadySeconds"):
            a.pop(f, None)
            b.pop(f, None)
        if a != b:
            errs.append(forbidden("spec", STS_FORBIDDEN))
    return errs


def job(new: Obj, old: Obj | None, sub: str) -> list[FieldError]:
    if sub == "status":
        return []
    errs = meta.object_meta(new) + _job_spec(meta.part(new, "spec"), "spec")
    if old is not None:
        spec, old_spec = meta.part(new, "spec"), meta.part(old, "spec")
        for field in ("selector", "template", "completionMode"):
            if field in old_spec and spec.get(field) != old_spec.get(field):
                # the real value is Go's %#v of the internal struct: the template's is printed so, for
                # the selector the JSON stands in for it
                shown = (
                    go_struct(spec.get(field), "core.PodTemplateSpec")
                    if field == "template"
                    else go_value(spec.get(field))
                )
                errs.append(invalid(f"spec.{field}", GoText(shown), "field is immutable"))
    return errs


def _job_spec(spec: Obj, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for f in (
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
    ):
        errs += meta.nonnegative(spec.get(f), f"{path}.{f}")
    template = spec.get("template")
    errs += pods.pod_template(template, f"{path}.template")
    rp = meta.part(template, "spec").get("restartPolicy")
    if rp not in ("OnFailure", "Never"):
        errs.append(required(f"{path}.template.spec.restartPolicy", 'valid values: "OnFailure", "Never"'))
    return errs


def cronjob(new: Obj, old: Obj | None, sub: str) -> list[FieldError]:
    """ValidateCronJobSpec: schedule, deadlines, concurrency policy, the job template, time zone."""
    if sub == "status":
        return []
    spec = meta.part(new, "spec")
    errs = meta.object_meta(new)
    schedule = spec.get("schedule")
    if not schedule:
        errs.append(required("spec.schedule"))
    else:
        try:
            cron.parse_standard(str(schedule))
        except cron.CronError as exc:
            errs.append(invalid("spec.schedule", schedule, str(exc)))
    errs += meta.nonnegative(spec.get("startingDeadlineSeconds"), "spec.startingDeadlineSeconds")
    policy = spec.get("concurrencyPolicy")
    if policy not in (None, "Allow", "Forbid", "Replace"):
        errs.append(not_supported("spec.concurrencyPolicy", policy, ["Allow", "Forbid", "Replace"]))
    job_template = meta.part(spec, "jobTemplate")
    errs += meta.object_meta(job_template, "spec.jobTemplate.metadata")
    errs += _job_spec(meta.part(job_template, "spec"), "spec.jobTemplate.spec")
    for f in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        errs += meta.nonnegative(spec.get(f), f"spec.{f}")
    tz = spec.get("timeZone")
    if tz is not None:
        why = cron.time_zone_error(str(tz))
        if why:
            errs.append(invalid("spec.timeZone", tz, why))
    return errs


def _immutable_selector(spec: Obj, old: Obj | None) -> list[FieldError]:
    if old is None:
        return []
    before = (old.get("spec") or {}).get("selector")
    if spec.get("selector") != before:
        return [invalid("spec.selector", go_selector(spec.get("selector")), "field is immutable")]
    return []


def _replica_status(status: Any, *, ready_label: str) -> list[FieldError]:
    """ValidateDeploymentStatus / ValidateReplicaSetStatus: counts non-negative, none above replicas."""
    if not isinstance(status, dict):
        return []
    counts = ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas")
    errs: list[FieldError] = []
    for f in (*counts, "observedGeneration", "collisionCount"):
        errs += meta.nonnegative(status.get(f), f"status.{f}")
    replicas = status.get("replicas") or 0
    for f in ("updatedReplicas", "readyReplicas", "availableReplicas"):
        v = status.get(f) or 0
        if v > replicas:
            errs.append(invalid(f"status.{f}", v, "cannot be greater than status.replicas"))
    if (status.get("availableReplicas") or 0) > (status.get(ready_label) or 0):
        errs.append(
            invalid(
                "status.availableReplicas",
                status.get("availableReplicas"),
                "cannot be greater than readyReplicas",
            )
        )
    return errs
