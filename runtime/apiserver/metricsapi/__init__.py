"""runtime/apiserver/metricsapi: `metrics.k8s.io/v1beta1` served by the embedded API server itself
(issue 20: `kubectl top node`, `kubectl top pod [--containers]`), from what the edges report.

    source.py   UsageSource: every node's kubelet Summary from the cloud's 0600 status socket
                (`GET /usage`, runtime/cloud/usage/), kept for a second so one kubectl call asks once
    serve.py    MetricsApi: NodeMetrics and PodMetrics get/list (label selectors on the objects' labels,
                field selectors metadata.name/metadata.namespace, as metrics-server), and the discovery
                entries that make kubectl find the group

Flow: kubectl → http/app.Handler → MetricsApi.answer → UsageSource (cloud socket) + the stored Nodes
and Pods (labels, existence) → NodeMetrics(List) / PodMetrics(List). Served only when the server is
given the cloud's socket (`kedge apiserver --usage-socket`, which `kedge init --embedded` passes); a
real cluster gets the same numbers through metrics-server (docs/metrics.md).
"""

from runtime.apiserver.metricsapi.serve import GROUP, VERSION, MetricsApi
from runtime.apiserver.metricsapi.source import UsageSource

__all__ = ["GROUP", "VERSION", "MetricsApi", "UsageSource"]
