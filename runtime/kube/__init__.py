"""runtime/kube: the project's one way to talk to Kubernetes (the only package importing lightkube).

    config.py     resolve_kubeconfig(flag) -> KubeSource   flag > $KUBECONFIG > ~/.kube/config > in-cluster
    client.py     make_client(flag) -> KubeClient          verbs and discovery: dicts in/out, typed errors
    transport.py  KubeTransport (KubeClient's base)        httpx from the kubeconfig, request, watch_stream
    wire.py       selector(), query(), delete_options()    how a call is spelled (pure functions)
    errors.py     kube_errors(server), Gone/KubeNotFound/KubeConflict/…  the one exit for httpx/lightkube
    retry.py      retryable(exc), with_retries(fn)          429/5xx/connection errors, backoff + jitter
    watch.py      watch_with_resume(...)                    list → SYNC… LISTED → watch; relist on 410
    apply.py      apply_objects / delete_objects            kubectl-like created/configured/unchanged
    resources.py  Res, PODS/NODES/…/DEVICES, load_yaml      resource names, Device CRDs as generic resources
    models.py     MODELS: lightkube-models by name          the API server's /openapi/v2 and field validation

Import the submodules directly; this package imports nothing so that `import runtime.kube.x` stays cheap.
"""
