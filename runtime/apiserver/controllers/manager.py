"""Start the controllers together (kube-controller-manager + kube-scheduler for one machine).

Any controller ending stops the rest and re-raises: a control plane with a dead scheduler must not
look healthy. `api` is the in-process embedded server, when there is one: the namespace controller
then claims the Terminating phase from the server's stand-in purge.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from runtime.apiserver.controllers import namespaces
from runtime.apiserver.controllers.base import run_all
from runtime.apiserver.controllers.deployments import DeploymentController
from runtime.apiserver.controllers.gc import GarbageCollector
from runtime.apiserver.controllers.namespaces import NamespaceLifecycle
from runtime.apiserver.controllers.nodelifecycle import NodeLifecycle
from runtime.apiserver.controllers.podgc import PodGC
from runtime.apiserver.controllers.replicasets import ReplicaSetController
from runtime.apiserver.controllers.scheduler import Scheduler
from runtime.apiserver.controllers.serviceaccounts import NamespaceDefaults
from runtime.errors import ConfigError
from runtime.kube.client import KubeClient, make_client

ALL = (
    "serviceaccount-and-root-ca",
    "namespace",
    "scheduler",
    "garbage-collector",
    "replicaset",
    "deployment",
    "node-lifecycle",
    "pod-garbage-collector",
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
) -> None:
    """Run the enabled controllers until cancelled (or until one fails, which is re-raised).

    `node_grace` is kube-controller-manager's --node-monitor-grace-period (40 s) and
    `node_monitor_period` its --node-monitor-period (5 s); `terminated_pod_threshold` is
    --terminated-pod-gc-threshold (12,500); tests shrink them.
    """
    wanted = set(enabled)
    unknown = wanted - set(ALL)
    if unknown:
        raise ConfigError(
            f"unknown controllers: {', '.join(sorted(unknown))}", hint=f"known: {', '.join(ALL)}"
        )
    runs = []
    if "serviceaccount-and-root-ca" in wanted:
        ca = ca_pem or client.ca_pem
        if not ca:
            raise ConfigError(
                f"root CA publisher: the kubeconfig for {client.server} names no CA",
                hint="pass ca_pem or use a kubeconfig with certificate-authority(-data)",
            )
        runs.append(NamespaceDefaults(client, ca).run())
    if "namespace" in wanted:
        if api is not None:
            namespaces.claim(api)
        runs.append(NamespaceLifecycle(client).run())
    if "scheduler" in wanted:
        runs.append(Scheduler(client).run())
    if "garbage-collector" in wanted:
        runs.append(GarbageCollector(client, rediscover=gc_rediscover).run())
    if "replicaset" in wanted:
        runs.append(ReplicaSetController(client).run())
    if "deployment" in wanted:
        runs.append(DeploymentController(client).run())
    if "node-lifecycle" in wanted:
        runs.append(NodeLifecycle(client, grace=node_grace, period=node_monitor_period).run())
    if "pod-garbage-collector" in wanted:
        gc = PodGC(
            client,
            period=podgc_period,
            quarantine=podgc_quarantine,
            terminated_threshold=terminated_pod_threshold,
        )
        runs.append(gc.run())
    log.info("controllers running against %s: %s", client.server, ", ".join(sorted(wanted)))
    await run_all("controller-manager", *runs)


async def run_embedded(api: Any, kubeconfig: Path, **options: Any) -> None:
    """For the embedded server's root task: the controllers on its admin kubeconfig
    (options as run_controllers: enabled, node_grace, node_monitor_period, ca_pem)."""
    client = make_client(kubeconfig)
    try:
        await run_controllers(client, api=api, **options)
    finally:
        await client.close()
