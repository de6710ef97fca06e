"""runtime/cloud/usage: the resource usage edges report, served as kubelet serves it (issue 20).

    store.py     UsageStore: the hub's subscriber for `update null/nodeusage/<node>` — checked,
                 bounded, kept compact (one record per connected node, dropped at disconnect)
    kubelet.py   per node, what a kubelet answers: `/metrics/resource` (Prometheus text with sample
                 timestamps, what metrics-server ≥ 0.6 scrapes) and `/stats/summary` (kubelet's Summary
                 JSON, what older metrics-server asked with only_cpu_and_memory=true); add_routes mounts
                 both under any prefix with a function that names the node of a request

Flow: edge UsageSampler → CloudHub → UsageStore.on_message → (status socket, 0600)
`/nodes/<node>/metrics/resource`, `/nodes/<node>/stats/summary`, `/usage` (every node's summary: what the
embedded API server reads for metrics.k8s.io, runtime/apiserver/metricsapi/).
"""

from runtime.cloud.usage.kubelet import add_routes, resource_metrics, summary
from runtime.cloud.usage.store import ContainerUsage, NodeUsage, PodUsage, UsageStore

__all__ = [
    "ContainerUsage",
    "NodeUsage",
    "PodUsage",
    "UsageStore",
    "add_routes",
    "resource_metrics",
    "summary",
]
