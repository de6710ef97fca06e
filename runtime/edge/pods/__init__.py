"""runtime/edge/pods: the edge's kubelet on the Docker Engine (PodManager is the interface).

    manager.py     PodManager: adopt at start, sync_pod/delete_pod, the periodic reconcile, status out
    worker.py      PodWorker: one pod's reconcile — volumes → sandbox → init containers → app containers
    starting.py    one container's start: image, create, start, record; kubelet's waiting reasons
    slots.py       how many pods change containers at once (StartBound, PodSlot)
    adapter.py     DockerAdapter: the docker SDK on a small thread pool (asyncio face)
    translate.py   pod spec → docker create arguments (sandbox, containers); labels.py: identity labels
    images.py      imagePullPolicy and imagePullSecrets     envs.py: env, envFrom, $(VAR)
    volumes.py     volumes under the state dir (atomic_dir.py: kubelet's AtomicWriter)
    refs.py        RefResolver: ConfigMaps, Secrets, tokens the pod references (served by cacherefs)
    probes.py      liveness/readiness/startup probes (exec, httpGet via runtime/edge/http11.py, tcp)
    stopping.py    graceful stop: preStop, SIGTERM, SIGKILL at the grace period's end
    observe.py     docker inspect → observations (the only reader of docker's container JSON)
    status.py      pod status as a pure function of spec, observations, previous status, now
    sandbox/       the pause image, built locally

A pod: Agent → PodManager.sync_pod → PodWorker.sync (under its lock, in a slot) → volumes.materialise
→ sandbox (translate, adapter) → starting.start per container (images, envs, translate) → probes →
observe → status.build → on_status (a podpatch through EdgeHub). Deletion: PodManager.delete_pod →
PodWorker.terminate (stopping) → containers and the volume folder removed.

This file imports nothing: importing a module of the package (the streams' adapter and labels)
must not load the manager, which the idle edge loads only with its first pod (docs/benchmarks.md).
"""
