"""kedge runtime: the cloud, edge and embedded control-plane roles. Never imports kubeedge_cli.

Packages (each `__init__.py` maps its own modules; docs/architecture.md draws the paths through them):
    apiserver/   the embedded Kubernetes API server and its controllers    (`kedge apiserver`)
    cloud/       cloudcore: CloudHub, the controllers that serve edges, the Device controller, install
    edge/        edgecore: EdgeHub, metadata cache, pods on Docker, node status, MQTT devices, DMI, join
    kube/        the one Kubernetes client (kubeconfig and auth through lightkube, verbs over httpx)
    protocol/    KubeEdge's wire protocol both roles speak: message, resource strings, codec, delivery
    pki/         the cluster CA, certificates, CSR signing, join tokens
Shared modules: config.py (cloud.toml/edge.toml), paths.py (every path from one --root), errors.py (the
exception tree; kubeedge_cli/errors.py maps it to exit codes), backoff.py, pace.py (token bucket),
tasks.py (supervised root tasks), quantity.py (Kubernetes quantities), listen.py, procs.py (detached
processes), logs.py (say once, then count), fsutil.py, eventloop.py (uvloop or asyncio's loop, by
role), templates.py.
Layers (tests/unit/test_layers.py): cloud and edge never import each other; only kube imports lightkube;
no imports by name and no module-level registries.
"""

__version__ = "0.1.0"
PROTOCOL_VERSION = "kubeedge-v1"  # KubeEdge beehive message model, as recorded in shared/kubeedge-wire
