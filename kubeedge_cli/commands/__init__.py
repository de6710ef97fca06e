"""kubeedge_cli/commands: one module per command, each a `typer.Typer()` that main.py mounts.

    version.py         kedge version
    init.py            kedge init          → runtime/cloud/install/init.py: manifests() | install()
    reset.py           kedge reset         → runtime/cloud/install/reset.py: reset_cloud(),
                                             runtime/edge/reset.py: reset_edge()
    token.py           kedge token create|list|revoke → runtime/cloud/pki_store.py: PKIStore
    cloud.py           kedge cloud run     → runtime/cloud/cloudcore.py: run(cfg, stop)
    apiserver.py       kedge apiserver     → runtime/apiserver/server.py: serve()
    join.py            kedge join          → runtime/edge/join/ (checks.py, steps.py)
    edge.py            kedge edge run      → runtime/edge/launcher.py (its one parser)
    status.py          kedge status        → the edge's status socket / files, cloud and apiserver status
    kubectl.py         kedge kubectl …     → exec kubectl with kedge's kubeconfig

A command parses its flags, calls one runtime entry point, and renders what it returns (long work
reports progress through a callback, e.g. init's Progress). Command modules never import each other:
what two commands share lives in kubeedge_cli (cluster.py, options.py, render.py).
"""
