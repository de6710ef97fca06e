"""The Docker engine behind an asyncio face (design.md §3): every SDK call runs on a small thread pool.

The docker SDK is blocking (requests over a unix socket); calling it on the event loop would stall the
edge's websocket keepalive. Errors are translated here, once, into kedge's tree:

    requests/transport failure  -> Unreachable("Docker engine <url>: ...")
    404 (container/image/exec)  -> NotFound
    409 (name in use, ...)      -> Conflict
    any other APIError          -> KedgeError
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from runtime.errors import Conflict, KedgeError, NotFound, Unreachable

log = logging.getLogger(__name__)
T = TypeVar("T")


class DockerAdapter:
    """Thin async wrapper around `docker.APIClient`; only the calls the pod manager needs."""

    def __init__(self, base_url: str | None = None, *, timeout: float = 60.0, workers: int = 8) -> None:
        self._base_url = base_url
        self._timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="docker")
        # exec (probes, preStop) gets its own threads: a hung probe command keeps its thread busy past
        # its timeout and must not starve container creation and listing
        self._exec_pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="docker-exec")
        # and so do pulls: one waiting on a registry that never answers must not hold a thread that
        # the starts of pods whose images are present need (issue 22)
        self._pull_pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="docker-pull")
        self._connections = 3 * workers  # one keep-alive connection per thread: none is dropped
        self._api: Any = None

    @property
    def url(self) -> str:
        return self._base_url or "unix:///var/run/docker.sock (DOCKER_HOST)"

    def _client(self) -> Any:
        if self._api is None:
            import docker  # imported lazily: the edge process stays small until pods exist

            with self._errors():
                if self._base_url:
                    self._api = docker.APIClient(
                        base_url=self._base_url, timeout=int(self._timeout), max_pool_size=self._connections
                    )
                else:
                    self._api = docker.from_env(
                        timeout=int(self._timeout), max_pool_size=self._connections
                    ).api
                self._base_url = self._base_url or str(self._api.base_url)
        return self._api

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        import docker.errors
        import requests.exceptions

        try:
            yield
        except docker.errors.NotFound as exc:
            raise NotFound(str(exc.explanation or exc)) from exc
        except docker.errors.APIError as exc:
            if exc.status_code == 409:
                raise Conflict(str(exc.explanation or exc)) from exc
            raise KedgeError(f"Docker engine {self.url}: {exc.explanation or exc}") from exc
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise self._unreachable(exc) from exc
        except docker.errors.DockerException as exc:
            raise self._unreachable(exc) from exc

    def _unreachable(self, exc: Exception) -> Unreachable:
        """Name a missing engine in words: no socket at all (no Docker here) reads unlike a refusal."""
        url = self._base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        if url.startswith("unix://") and not os.path.exists(url.removeprefix("unix://")):
            return Unreachable(
                f"no Docker engine: {url.removeprefix('unix://')} does not exist",
                hint="install and start Docker, or point DOCKER_HOST at an engine",
            )
        return Unreachable(f"Docker engine {url} is not answering: {exc}", hint="is dockerd running?")

    async def _call(self, fn: Callable[..., T], *args: Any, pool: ThreadPoolExecutor | None = None) -> T:
        def run() -> T:
            with self._errors():
                return fn(self._client(), *args)

        return await asyncio.get_running_loop().run_in_executor(pool or self._pool, run)

    async def call(self, fn: Callable[[Any], T]) -> T:
        """Any SDK call ``fn(api)`` on the pool, errors translated (the edge's stream sessions)."""
        return await self._call(fn)

    def blocking(self, fn: Callable[[Any], T]) -> T:
        """``fn(api)`` on the calling thread, errors translated: for a session's own reader thread."""
        with self._errors():
            return fn(self._client())

    async def close(self) -> None:
        if self._api is not None:
            await asyncio.get_running_loop().run_in_executor(self._pool, self._api.close)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._exec_pool.shutdown(wait=False, cancel_futures=True)
        self._pull_pool.shutdown(wait=False, cancel_futures=True)

    # -- engine ---------------------------------------------------------------------------------
    async def version(self) -> dict[str, Any]:
        return await self._call(lambda api: api.version())

    async def info(self) -> dict[str, Any]:
        return await self._call(lambda api: api.info())

    # -- containers -----------------------------------------------------------------------------
    async def list_containers(self, labels: dict[str, str]) -> list[dict[str, Any]]:
        """Summaries (Id, Names, State, Labels, ...) of every container, running or not, with all labels."""
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        return await self._call(lambda api: api.containers(all=True, filters=filters))

    async def inspect(self, cid: str) -> dict[str, Any] | None:
        try:
            return await self._call(lambda api: api.inspect_container(cid))
        except NotFound:
            return None

    async def create(self, name: str, *, host_config: dict[str, Any], **config: Any) -> str:
        def run(api: Any) -> str:
            hc = api.create_host_config(**host_config)
            return str(api.create_container(name=name, host_config=hc, **config)["Id"])

        return await self._call(run)

    async def start(self, cid: str) -> None:
        await self._call(lambda api: api.start(cid))

    async def stop(self, cid: str, grace: int) -> None:
        """SIGTERM (the image's stop signal), SIGKILL after `grace` seconds."""
        await self._call(lambda api: api.stop(cid, timeout=grace))

    async def kill(self, cid: str, signal: str = "SIGKILL") -> None:
        await self._call(lambda api: api.kill(cid, signal=signal))

    async def remove(self, cid: str) -> None:
        try:
            await self._call(lambda api: api.remove_container(cid, force=True, v=False))
        except NotFound:
            pass

    async def exec(self, cid: str, cmd: list[str], limit: float) -> tuple[int, bytes]:
        """Run `cmd` in the container; exit code and output. Over `limit` seconds: (-1, b"timeout")."""

        def run(api: Any) -> tuple[int, bytes]:
            ex = api.exec_create(cid, cmd, stdout=True, stderr=True)
            out = api.exec_start(ex["Id"])
            code = api.exec_inspect(ex["Id"]).get("ExitCode")
            return (code if code is not None else -1), out

        try:
            return await asyncio.wait_for(self._call(run, pool=self._exec_pool), limit)
        except TimeoutError:
            return -1, b"timeout"

    async def logs(self, cid: str, tail: int = 50) -> bytes:
        return await self._call(lambda api: api.logs(cid, tail=tail))

    # -- images ---------------------------------------------------------------------------------
    async def image(self, ref: str) -> dict[str, Any] | None:
        try:
            return await self._call(lambda api: api.inspect_image(ref))
        except NotFound:
            return None

    async def pull(self, ref: str, auth: dict[str, str] | None = None) -> None:
        repo, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "latest")

        def run(api: Any) -> None:
            for event in api.pull(repo, tag=tag or "latest", auth_config=auth, stream=True, decode=True):
                if "error" in event:
                    raise KedgeError(f"pull {ref}: {event['error']}")

        await self._call(run, pool=self._pull_pool)

    async def import_image(self, data: bytes, repository: str, tag: str, changes: list[str]) -> None:
        await self._call(
            lambda api: api.import_image_from_data(data, repository=repository, tag=tag, changes=changes)
        )
