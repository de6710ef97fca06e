"""The embedded control plane's controllers: what kube-controller-manager and kube-scheduler do for a
one-machine cluster, each a small watch-driven module on runtime.kube (never on the store directly),
so each behaves the same against the embedded server and a real one.

    serviceaccounts.py  `default` ServiceAccount + `kube-root-ca.crt` in every namespace
    namespaces.py       namespace lifecycle: empty a deleted namespace, then drop its finalizer
    scheduler.py        bind pending pods to fitting nodes (fit.py holds the filters)
    gc.py               ownerReferences: background, foreground and orphan propagation
    replicasets.py      ReplicaSet / ReplicationController → pods (create, adopt, scale down, status)
    deployments.py      Deployment → ReplicaSets (rolling update, Recreate, status, history)
    nodelifecycle.py    Lease/heartbeat → Ready Unknown, condition taints, NoExecute eviction
    podgc.py            pods on deleted nodes, terminated pods beyond the threshold
    apiservices.py      APIService Available condition (Local, or not proxied: kedge has no aggregator)
    base.py             Informer (watched cache), WorkQueue, run_worker (one failing key never stops it)
    health.py           ControllerHealth: failing objects and crashes per controller (/readyz, status)
    manager.py          run_controllers(): start them together, each supervised and restarted
"""
