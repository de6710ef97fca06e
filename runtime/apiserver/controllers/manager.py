"""Start the controllers together (kube-controller-manager + kube-scheduler for one machine).

Each controller runs supervised: one that stops (a watch that cannot be resumed, a bug) is logged,
reported in `ControllerHealth` and restarted with backoff, so no object and no controller can take
the process down — and the failure stays visible: with the embedded server, every controller is a
`controller/<name>` check of /readyz (see `readiness`), and `kedge status` reads those. `api` is the
in-process embedded server, when there is one: the namespace controller then claims the Terminating
phase from the server's stand-in purge.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from runtime.apiserver.controllers import namespaces
from runtime.apiserver.controllers.apiservices import APIServiceAvailability
from runtime.apiserver.controllers.base import Informers
from runtime.apiserver.controllers.deployments import DeploymentController
from runtime.apiserver.controllers.gc import GarbageCollector
from runtime.apiserver.controllers.health import ControllerHealth
from runtime.apiserver.controllers.namespaces import NamespaceLifecycle
from runtime.apiserver.controllers.nodelifecycle import NodeLifecycle
from runtime.apiserver.controllers.podgc import PodGC
from runtime.apiserver.controllers.replicasets import REPLICATIONCONTROLLER, ReplicaSetController
from runtime.apiserver.controllers.scheduler import Scheduler
from runtime.apiserver.controllers.serviceaccounts import NamespaceDefaults
from runtime.backoff import backoff
from runtime.errors import ConfigError
from runtime.kube.client import KubeClient, make_client

ALL = (
    "serviceaccount-and-root-ca",
    "namespace",
    "scheduler",
    "garbage-collector",
    "replicaset",
    "replicationcontroller",
    "deployment",
    "node-lifecycle",
    "pod-garbage-collector",
    "apiservice-availability",
)
log = logging.getLogger(__name__)


async def run_controllers(
    client: KubeClient,
    *,
    api: Any | None = None,
    ca_pem: str | None = None,
    enabled: Iterable[str] = ALL,
    node_grace: float = 40.0,
    node_monitor_period: float = 5.0,
    podgc_period: float = 20.0,
    podgc_quarantine: float = 40.0,
    terminated_pod_threshold: int = 12500,
    gc_rediscover: float = 10.0,
    health: ControllerHealth | None = None,
) -> None:
    """Run the enabled controllers until cancelled; a controller that stops is restarted.

    `node_grace` is kube-controller-manager's --node-monitor-grace-period (40 s) and
    `node_monitor_period` its --node-monitor-period (5 s); `terminated_pod_threshold` is
    --terminated-pod-gc-threshold (12,500); tests shrink them. `health` collects every
    controller's failures (a fresh one when not given).
    """
    wanted = set(enabled)
    unknown = wanted - set(ALL)
    if unknown:
        raise ConfigError(
            f"unknown controllers: {', '.join(sorted(unknown))}", hint=f"known: {', '.join(ALL)}"
        )
    health = health if health is not None else ControllerHealth()
    informers = Informers(client)  # one watch and cache per resource, shared by every controller
    factories: dict[str, Callable[[], Run]] = {
        "serviceaccount-and-root-ca": lambda: (
            NamespaceDefaults(informers, _root_ca(client, ca_pem), health=health).run
        ),
        "namespace": lambda: _namespace_lifecycle(informers, api, health),
        "scheduler": lambda: Scheduler(informers, health=health).run,
        "garbage-collector": lambda: GarbageCollector(informers, rediscover=gc_rediscover, health=health).run,
        "replicaset": lambda: ReplicaSetController(informers, health=health).run,
        "replicationcontroller": lambda: (
            ReplicaSetController(informers, kind=REPLICATIONCONTROLLER, health=health).run
        ),
        "deployment": lambda: DeploymentController(informers, health=health).run,
        "node-lifecycle": lambda: (
            NodeLifecycle(informers, grace=node_grace, period=node_monitor_period, health=health).run
        ),
        "pod-garbage-collector": lambda: (
            PodGC(
                informers,
                period=podgc_period,
                quarantine=podgc_quarantine,
                terminated_threshold=terminated_pod_threshold,
                health=health,
            ).run
        ),
        "apiservice-availability": lambda: APIServiceAvailability(informers, health=health).run,
    }
    runs = {name: make() for name, make in factories.items() if name in wanted}
    for name in runs:
        health.register(name)
    log.info("controllers running against %s: %s", client.server, ", ".join(sorted(wanted)))
    tasks = [asyncio.ensure_future(supervise(name, run, health)) for name, run in runs.items()]
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


Run = Callable[[], Awaitable[None]]


def _root_ca(client: KubeClient, ca_pem: str | None) -> str:
    ca = ca_pem or client.ca_pem
    if not ca:
        raise ConfigError(
            f"root CA publisher: the kubeconfig for {client.server} names no CA",
            hint="pass ca_pem or use a kubeconfig with certificate-authority(-data)",
        )
    return ca


def _namespace_lifecycle(informers: Informers, api: Any | None, health: ControllerHealth) -> Run:
    if api is not None:  # the embedded server leaves namespace deletion to this controller
        namespaces.claim(api)
    return NamespaceLifecycle(informers, health=health).run


async def supervise(
    name: str, run: Callable[[], Awaitable[None]], health: ControllerHealth, *, cap: float = 30.0
) -> None:
    """Run one controller forever: when it stops (it never should), record why and start it again
    after a backoff, so neither a bug nor a stored object the controller chokes on ends the process."""
    delays = backoff(initial=0.5, cap=cap)
    while True:
        try:
            await run()
            exc: BaseException = RuntimeError("ended unexpectedly")
        except Exception as failure:
            exc = failure
        health.crashed(name, exc)
        await asyncio.sleep(next(delays))
        health.running(name)


def readiness(health: ControllerHealth, names: Iterable[str]) -> dict[str, Callable[[], str | None]]:
    """/readyz checks `controller/<name>`: None while healthy, else what fails."""

    def check(name: str) -> Callable[[], str | None]:
        return lambda: health.problem(name)

    return {f"controller/{name}": check(name) for name in names}


async def run_embedded(api: Any, kubeconfig: Path, **options: Any) -> None:
    """For the embedded server's root task: the controllers on its admin kubeconfig
    (options as run_controllers: enabled, node_grace, node_monitor_period, ca_pem); their health
    becomes the server's `controller/<name>` readiness checks."""
    health = options.pop("health", None) or ControllerHealth()
    api.checks.update(readiness(health, options.get("enabled", ALL)))
    api.extra["controllers"] = health
    client = make_client(kubeconfig)
    try:
        await run_controllers(client, api=api, health=health, **options)
    finally:
        await client.close()
