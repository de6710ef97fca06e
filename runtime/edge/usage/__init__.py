"""runtime/edge/usage: the node's and its pods' resource usage (CPU, memory), as kubelet's resource
metrics, reported to a kedge cloud for `kubectl top` (issue 20).

    cgroups.py   CgroupReader: one container's cumulative CPU and memory working set from its cgroup
                 files (v1 or v2, cgroupfs or systemd driver), the node's from /proc — blocking reads
    sampler.py   UsageSampler: every interval one engine call lists the node's running containers, one
                 thread reads all their cgroup files, rates come from the previous sample; the report
                 goes to the cloud only while a kedge cloud is connected (usage is perishable: never
                 queued in the outbox)

Flow: UsageSampler.run → engine GET /containers/json (labels io.kedge.node=<node>) → asyncio.to_thread
(CgroupReader over every container + node) → report() → EdgeHub.try_send(`update null/nodeusage/<node>`)
→ the cloud's UsageStore (runtime/cloud/usage/).
"""

from runtime.edge.usage.cgroups import CgroupReader, Reading
from runtime.edge.usage.sampler import UsageSampler, usage_message

__all__ = ["CgroupReader", "Reading", "UsageSampler", "usage_message"]
