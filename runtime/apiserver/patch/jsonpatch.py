"""JSON patch (RFC 6902) and JSON merge patch (RFC 7386) as kube-apiserver applies them.

kube-apiserver uses evanphx/json-patch: a malformed patch document is 400 BadRequest, a patch that does
not apply to the object (missing path, failed `test`) is 422 with the library's message. `PatchError`
carries that HTTP code so the server can answer with the same Status a real cluster sends.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import jsonpointer


class PatchError(Exception):
    """A patch the server refuses; `code` is the HTTP status Kubernetes answers with (400 or 422)."""

    def __init__(self, message: str, code: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


_OPS = ("add", "remove", "replace", "move", "copy", "test")


def _check_op(op: Any) -> None:
    if not isinstance(op, dict):
        raise PatchError(
            f"json: cannot unmarshal {type(op).__name__} into Go value of type jsonpatch.Operation", 400
        )
    kind = op.get("op")
    if kind not in _OPS:
        raise PatchError(f"Unexpected kind: {kind if kind is not None else 'unknown'}", 422)
    if not isinstance(op.get("path"), str):
        raise PatchError(f"{kind} operation missing path", 422)
    if kind in ("add", "replace", "test") and "value" not in op:
        raise PatchError(f"{kind} operation missing value", 422)
    if kind in ("move", "copy") and not isinstance(op.get("from"), str):
        raise PatchError(f"{kind} operation missing from", 422)


def _missing(kind: str, op: dict[str, Any]) -> str:
    path = op.get("path", "")
    if kind == "remove":
        return f'remove operation does not apply: doc is missing path: "{path}": missing value'
    if kind == "replace":
        return f"replace operation does not apply: doc is missing key: {path}: missing value"
    if kind in ("move", "copy"):
        return (
            f"{kind} operation does not apply: doc is missing from path: {op.get('from', '')}: missing value"
        )
    if kind == "test":
        return f"testing value {path} failed: test failed"
    return f'add operation does not apply: doc is missing path: "{path}": missing value'


_OMIT_EMPTY_META = ("labels", "annotations", "finalizers", "ownerReferences")


def normalize_meta(obj: dict[str, Any]) -> dict[str, Any]:
    """What decoding into ObjectMeta does: empty labels/annotations/finalizers/ownerReferences vanish."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        for k in _OMIT_EMPTY_META:
            if k in meta and (meta[k] is None or meta[k] == {} or meta[k] == []):
                del meta[k]
    return obj


def apply_json_patch(obj: dict[str, Any], ops: list[Any]) -> dict[str, Any]:
    """Apply an RFC 6902 operation list; the input is not modified."""
    if not isinstance(ops, list):
        raise PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch", 400)
    doc: Any = copy.deepcopy(obj)
    for op in ops:
        _check_op(op)
        kind = op["op"]
        try:
            doc = jsonpatch.JsonPatch([op]).apply(doc, in_place=True)
        except jsonpatch.JsonPatchTestFailed:
            raise PatchError(_missing("test", op)) from None
        except jsonpatch.JsonPatchConflict as exc:
            if "insert outside of list" in str(exc) or "index" in str(exc):
                raise PatchError(
                    f"Unable to access invalid index: {op['path'].rsplit('/', 1)[-1]}: "
                    "invalid index referenced"
                ) from None
            raise PatchError(_missing(kind, op)) from None
        except (
            jsonpatch.JsonPatchException,
            jsonpointer.JsonPointerException,
            KeyError,
            IndexError,
            TypeError,
        ) as exc:
            if isinstance(exc, jsonpatch.InvalidJsonPatch):
                raise PatchError(str(exc), 422) from None
            raise PatchError(_missing(kind, op)) from None
    if not isinstance(doc, dict):
        raise PatchError("patch result is not a JSON object", 422)
    return normalize_meta(doc)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 MergePatch: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result: dict[str, Any] = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            result[key] = merge_patch(result.get(key), value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def apply_merge_patch(obj: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Apply an RFC 7386 merge patch; the input is not modified."""
    if not isinstance(patch, dict):
        raise PatchError("json: cannot unmarshal into Go value of type map[string]interface {}", 400)
    out = merge_patch(copy.deepcopy(obj), patch)
    assert isinstance(out, dict)
    return normalize_meta(out)


def create_merge_patch(original: Any, modified: Any) -> Any:
    """The merge patch turning `original` into `modified` (for diffs and no-op checks)."""
    if not isinstance(original, dict) or not isinstance(modified, dict):
        return modified
    out: dict[str, Any] = {}
    for k in original:
        if k not in modified:
            out[k] = None
    for k, v in modified.items():
        if k not in original:
            out[k] = v
        elif original[k] != v:
            if isinstance(v, dict) and isinstance(original[k], dict):
                out[k] = create_merge_patch(original[k], v)
            else:
                out[k] = v
    return out
