"""Token refresh at 80 % of lifetime (cached token served while offline) and pull-secret auth."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from runtime.edge.pods import volumes
from runtime.edge.pods.images import auth_for
from runtime.edge.pods.refs import RefMissing
from tests.fixtures.pods import MemRefs

POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": {"serviceAccountName": "sa"}}
SRC = {"expirationSeconds": 100, "path": "token"}


class FlakyRefs(MemRefs):
    def __init__(self) -> None:
        super().__init__()
        self.online = True

    async def sa_token(
        self, ns: str, sa: str, pod: dict[str, Any], expiration: int, audience: list[str] | None
    ) -> str | None:
        self.token_requests += 1
        return f"t{self.token_requests}" if self.online else None


async def test_token_refreshed_at_80_percent_and_kept_while_offline() -> None:
    refs, cache = FlakyRefs(), volumes.TokenCache()
    assert await cache.get(refs, POD, ("v", "token"), SRC, now=0) == "t1"
    assert await cache.get(refs, POD, ("v", "token"), SRC, now=79) == "t1"
    assert await cache.get(refs, POD, ("v", "token"), SRC, now=80) == "t2"
    refs.online = False
    assert await cache.get(refs, POD, ("v", "token"), SRC, now=200) == "t2"
    with pytest.raises(RefMissing, match="service account sa"):
        await volumes.TokenCache().get(refs, POD, ("v", "token"), SRC, now=0)


async def test_missing_optional_and_required_sources(tmp_path: Path) -> None:
    refs = MemRefs()
    pod: dict[str, Any] = {
        **POD,
        "spec": {"volumes": [{"name": "opt", "configMap": {"name": "none", "optional": True}}]},
    }
    mounts, _ = await volumes.materialise(refs, pod, tmp_path, volumes.TokenCache(), "h", "p")
    assert mounts["opt"].read_only and not [
        p for p in (tmp_path / "opt").iterdir() if not p.name.startswith("..")
    ]
    pod["spec"]["volumes"] = [{"name": "req", "secret": {"secretName": "none"}}]
    with pytest.raises(RefMissing, match='secret "none" not found'):
        await volumes.materialise(refs, pod, tmp_path, volumes.TokenCache(), "h", "p")


async def test_image_pull_secret_auth() -> None:
    refs = MemRefs()
    cfg = {
        "auths": {
            "reg.example:5000": {"auth": base64.b64encode(b"user:pw").decode()},
            "https://index.docker.io/v1/": {"username": "hub", "password": "hpw"},
        }
    }
    refs.put_secret("ns", "pull", {".dockerconfigjson": json.dumps(cfg)})
    pod = {**POD, "spec": {"imagePullSecrets": [{"name": "missing"}, {"name": "pull"}]}}
    auth = await auth_for(refs, pod, "reg.example:5000/app:1")
    assert auth is not None and (auth["username"], auth["password"]) == ("user", "pw")
    hub = await auth_for(refs, pod, "library/busybox")
    assert hub is not None and hub["username"] == "hub"
    assert await auth_for(refs, pod, "other.example/app:1") is None


async def test_fs_group_owns_volume_files(tmp_path: Path) -> None:
    refs = MemRefs()
    refs.put_secret("ns", "s", {"k": "v"})
    pod = {
        **POD,
        "spec": {
            "securityContext": {"fsGroup": 4242},
            "volumes": [
                {"name": "sec", "secret": {"secretName": "s", "defaultMode": 0o400}},
                {"name": "scratch", "emptyDir": {}},
            ],
        },
    }
    await volumes.materialise(refs, pod, tmp_path, volumes.TokenCache(), "h", "p")
    st = (tmp_path / "sec" / "k").stat()
    assert st.st_gid == 4242 and st.st_mode & 0o777 == 0o440
    assert (tmp_path / "scratch").stat().st_gid == 4242
    _, changed = await volumes.materialise(refs, pod, tmp_path, volumes.TokenCache(), "h", "p")
    assert not changed  # same payload, same modes: nothing rewritten on refresh
