"""The review kinds: answered from the request, never stored (201 with the review and its status).

TokenReview authenticates the token as a request's bearer token is (http/auth.authenticate: the admin
token, service-account tokens this server issued and whose objects still exist), and checks a
service-account token's audiences against the requested ones — or the server's own, the issuer, when
none are requested — as kube-apiserver does. SubjectAccessReview answers with this server's
authorization, which is no RBAC: every authenticated user may do everything, anonymous users only the
public health and version paths. SelfSubjectReview and SelfSubjectAccessReview answer for the caller.
"""

from __future__ import annotations

from typing import Any

import orjson

from runtime.apiserver.api import Api
from runtime.apiserver.http.auth import ISSUER, PUBLIC_PATHS, authenticate
from runtime.apiserver.http.context import ApiRequest, require_object
from runtime.apiserver.http.status_errors import bad_request, invalid

Obj = dict[str, Any]
Result = tuple[int, bytes]
ALLOWED = "kedge embedded API server: every authenticated user is admin"


async def review(api: Api, ctx: ApiRequest) -> Result:
    body = require_object(ctx.decode_body())
    rt = ctx.rt
    body.setdefault("apiVersion", rt.api_version)
    body.setdefault("kind", rt.kind)
    body.setdefault("metadata", {})["creationTimestamp"] = None
    spec = body.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    if rt.plural == "selfsubjectaccessreviews":
        body["status"] = {"allowed": True, "reason": ALLOWED}
    elif rt.plural == "tokenreviews":
        body["status"] = _token_status(api, spec)
    elif rt.plural == "subjectaccessreviews":
        body["status"] = _access_status(spec)
    else:
        body["status"] = {"userInfo": ctx.user.info()}
    return 201, orjson.dumps(body)


def _token_status(api: Api, spec: Obj) -> Obj:
    token = spec.get("token")
    if not isinstance(token, str) or not token:
        raise bad_request("token is required for TokenReview in authentication")
    wanted = [a for a in spec.get("audiences") or [] if isinstance(a, str)] or [ISSUER]
    user = authenticate(token, api.admin_token, api.signer, api.store)
    if user is not None and user.audiences:  # a service-account token: for one of the audiences asked
        wanted = [a for a in wanted if a in user.audiences]
    if user is None or not wanted:
        return {"user": {}}
    return {"authenticated": True, "user": user.info(), "audiences": wanted}


def _access_status(spec: Obj) -> Obj:
    resource, plain = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    user, groups = spec.get("user") or "", spec.get("groups") or []
    causes = []
    if resource is not None and plain is not None:
        text = "cannot be specified in combination with resourceAttributes"
        causes.append(
            (
                "spec.nonResourceAttributes",
                "FieldValueInvalid",
                _invalid("spec.nonResourceAttributes", plain, text),
            )
        )
    if resource is None and plain is None:
        text = "exactly one of nonResourceAttributes or resourceAttributes must be specified"
        causes.append(
            ("spec.resourceAttributes", "FieldValueInvalid", _invalid("spec.resourceAttributes", None, text))
        )
    if not user and not groups:
        text = "at least one of user or group must be specified"
        causes.append(("spec.user", "FieldValueInvalid", _invalid("spec.user", user, text)))
    if causes:
        raise invalid("SubjectAccessReview", "", "authorization.k8s.io", causes)
    anonymous = user == "system:anonymous" or "system:unauthenticated" in groups
    path = plain.get("path", "") if isinstance(plain, dict) else ""
    if anonymous and path not in PUBLIC_PATHS:
        return {"allowed": False, "reason": "kedge embedded API server: anonymous requests are not served"}
    return {"allowed": True, "reason": ALLOWED}


def _invalid(path: str, value: Any, text: str) -> str:
    shown = "null" if value is None else orjson.dumps(value).decode()
    return f"{path}: Invalid value: {shown}: {text}"
