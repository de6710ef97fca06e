"""Record a kube-validation corpus (shared/kube-validation's format) from a running API server, so the
corpus can grow: new cases are added without `expect` and recorded against a real kube-apiserver.

    python -m tests.kubeapi.recorder --kubeconfig real.kubeconfig --out cases.json [--only ID,...] [--runs 3]

The requests are sent and the answers normalised by the corpus's own replay.py, run as a subprocess
(`--report`): uids, resourceVersions, timestamps (managedFields times included), generated names,
Service clusterIPs and nodePorts, Go pointers become placeholders (its README has the table). Each
case runs `--runs` times, each time in fresh namespaces with a fresh run token; the recording keeps
what every run gave and writes `<varies>` where the runs still differ. `compare.causes` is "set" when
the runs gave the causes in different orders, or when two or more causes lie under a field the real
server walks as a Go map (labels, annotations, data keys, ...); a case's own `compare` is kept.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "kube-validation"
VARIES = "<varies>"
# fields whose entries a real server validates by iterating a Go map: their causes come in any order
MAP_FIELDS = (
    "labels",
    "annotations",
    "data",
    "binaryData",
    "stringData",
    "nodeSelector",
    "matchLabels",
    "limits",
    "requests",
    "selector",
)


class RecordError(Exception):
    """The replay could not run (server unreachable, credentials refused, a broken case file)."""


def replay_report(corpus: Path, cases_file: Path, kubeconfig: Path, only: Sequence[str]) -> list[Any]:
    """One run of replay.py over `only` (every case when empty): its report, one entry per case with
    the normalised answer (`got`, None when the setup failed) and the verdict (`ok`, `diff`)."""
    with tempfile.TemporaryDirectory(prefix="kv-record-") as tmp:
        report = Path(tmp) / "report.json"
        argv = [sys.executable, str(corpus / "replay.py"), "--kubeconfig", str(kubeconfig)]
        argv += ["--cases", str(cases_file), "--report", str(report)]
        if only:
            argv += ["--only", ",".join(only)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
        if not report.exists():
            raise RecordError(
                f"replay.py wrote no report (exit {done.returncode}): {done.stderr or done.stdout}"
            )
        entries: list[Any] = json.loads(report.read_text())
        return entries


def replay_answers(corpus: Path, cases_file: Path, kubeconfig: Path, only: Sequence[str]) -> dict[str, Any]:
    """Each case's normalised answer by id, from one replay."""
    return {r["id"]: r["got"] for r in replay_report(corpus, cases_file, kubeconfig, only)}


def merge(runs: list[Any]) -> Any:
    """What every run gave; `<varies>` where they differ (lists of one length element by element)."""
    first = runs[0]
    if all(r == first for r in runs[1:]):
        return first
    if all(isinstance(r, dict) for r in runs):
        keys = [k for k in first if all(k in r for r in runs[1:])]
        return {k: merge([r[k] for r in runs]) for k in keys} if keys else VARIES
    if all(isinstance(r, list) and len(r) == len(first) for r in runs):
        return [merge([r[i] for r in runs]) for i in range(len(first))]
    return VARIES


def _causes(answer: Any) -> list[Any]:
    body = answer.get("body") if isinstance(answer, dict) else None
    details = body.get("details") if isinstance(body, dict) else None
    return list((details or {}).get("causes") or [])


def _under_map(cause: Any) -> bool:
    field = str(cause.get("field", "")) if isinstance(cause, dict) else ""
    parts = field.replace("[", ".").split(".")
    return any(p in MAP_FIELDS for p in parts)


def _key(c: Any) -> str:
    return json.dumps(c, sort_keys=True)


def record_case(case: dict[str, Any], answers: list[Any]) -> dict[str, Any]:
    """`case` with its `expect` (and `compare`) from the runs' answers."""
    out = {k: v for k, v in case.items() if k not in ("expect", "compare")}
    causes = [_causes(a) for a in answers]
    unordered = any(c != causes[0] and sorted(map(_key, c)) == sorted(map(_key, causes[0])) for c in causes)
    unordered = unordered or sum(map(_under_map, causes[0])) >= 2
    compare = dict(case.get("compare") or {})
    if unordered:
        compare["causes"] = "set"
        for a in answers:  # one order for the recording, so that the runs merge
            body = a["body"]
            body["details"]["causes"] = sorted(body["details"]["causes"], key=_key)
    if compare:
        out["compare"] = compare
    out["expect"] = merge(answers)
    return out


def record(
    kubeconfig: Path,
    cases_file: Path,
    runs: int = 3,
    only: Sequence[str] = (),
    corpus: Path = CORPUS,
) -> dict[str, Any]:
    """The case file recorded from the server `kubeconfig` names: the cases in `only` (all when empty)
    re-recorded, the others kept as they were."""
    doc = json.loads(cases_file.read_text())
    wanted = [c for c in doc["cases"] if not only or c["id"] in only]
    if not wanted:
        raise RecordError(f"no case of {cases_file} is named {', '.join(only)}")
    with tempfile.TemporaryDirectory(prefix="kv-cases-") as tmp:
        # cases added without `expect` get a placeholder, so that replay.py can run them
        runnable = copy.deepcopy(doc)
        for c in runnable["cases"]:
            c.setdefault("expect", {"status": 0})
        path = Path(tmp) / "cases.json"
        path.write_text(json.dumps(runnable))
        ids = [c["id"] for c in wanted]
        results = [replay_answers(corpus, path, kubeconfig, ids) for _ in range(runs)]
    recorded = {}
    for c in wanted:
        answers = [r.get(c["id"]) for r in results]
        if any(a is None for a in answers):
            raise RecordError(f"{c['id']}: the server gave no answer to record (its setup failed)")
        recorded[c["id"]] = record_case(c, answers)
    out = dict(doc)
    out["recordedFrom"] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "runs": runs,
        "note": "recorded by tests/kubeapi/recorder.py; say which server (version, flags) here",
    }
    out["cases"] = [recorded.get(c["id"], c) for c in doc["cases"]]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kubeconfig", required=True, type=Path, help="the server to record from")
    p.add_argument("--cases", type=Path, default=CORPUS / "cases.json", help="the case file to record")
    p.add_argument("--out", type=Path, required=True, help="where the recorded case file goes")
    p.add_argument("--only", default="", help="comma-separated case ids to re-record (default: all)")
    p.add_argument("--runs", type=int, default=3, help="runs per case (placeholders where they differ)")
    p.add_argument("--corpus", type=Path, default=CORPUS, help="the directory holding replay.py")
    args = p.parse_args(argv)
    only = [x for x in args.only.split(",") if x]
    try:
        doc = record(args.kubeconfig, args.cases, args.runs, only, args.corpus)
    except RecordError as exc:
        print(f"record: {exc}", file=sys.stderr)
        return 2
    args.out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    n = len(only) if only else len(doc["cases"])
    print(f"{n} cases recorded into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
