"""runtime/kube: the project's one way to talk to Kubernetes (the only package importing lightkube,
for the kubeconfig, auth/TLS and the built-in kinds; the verbs are kedge's own over httpx — why, in
docs/architecture.md "The Kubernetes client").

    config.py     resolve_kubeconfig(flag) -> KubeSource   flag > $KUBECONFIG > ~/.kube/config > in-cluster
    client.py     make_client(flag) -> KubeClient          verbs and discovery: dicts in/out, typed errors
    transport.py  KubeTransport (KubeClient's base)        httpx from the kubeconfig, request, watch_stream
    wire.py       selector(), query(), delete_options()    how a call is spelled (pure functions)
    errors.py     kube_errors(server), Gone/KubeNotFound/KubeConflict/…  the one exit for httpx/lightkube
    retry.py      retryable(exc), with_retries(fn)          429/5xx/connection errors, backoff + jitter
    watch.py      watch_with_resume(...)                    list → SYNC… LISTED → watch; relist on 410
    apply.py      apply_objects / delete_objects            kubectl-like created/configured/unchanged
    resources.py  Res, PODS/NODES/…/DEVICES, lookup, load_yaml  resource names (URL pieces), YAML → dicts
    models.py     MODELS: lightkube-models by name          the API server's /openapi/v2 and field validation
    leanhttp.py   LeanHTTP                                  kept-alive HTTP/1.1 (h11) for Lease writes

Import the submodules directly; this package imports nothing so that `import runtime.kube.x` stays cheap.
"""
