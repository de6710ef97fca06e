"""runtime/apiserver: the embedded Kubernetes API server (`kedge apiserver`), one package per concept.

    server.py      serve(): storage, credentials, TLS, bootstrap objects, the admin kubeconfig
    api.py         Api: the state every handler shares (registry, store, token signer, hooks)
    selfstatus.py  the server's part of `kedge status` (its /readyz?verbose)
    http/          aiohttp glue: authenticate, decode the request, dispatch, render Status errors, watch
    handlers/      the verbs: reads (get/list), writes (create/update), patches (patch/apply), deletes, …
    admission/     what a write gets before it is stored: defaults, create-time admission, Service IPs
    validation/    unknown/duplicate fields, names, and the per-kind validation rules
    patch/         JSON and merge patch, strategic merge patch, server-side apply and managedFields
    registry/      kinds served (built-in + CRDs), metadata rules, selectors, the store and its sqlite
    printers/      server-side Table responses (`kubectl get`)
    openapi/       /openapi/v2 and /openapi/v3 documents
    controllers/   kube-controller-manager and scheduler loops that run in the same process
    kubelet/       pods/log, exec, attach, portforward: passed to the node's kubelet (kube-apiserver's way)
    metricsapi/    metrics.k8s.io/v1beta1 (`kubectl top`) from the cloud's socket (--usage-socket)

A request's path, top-down:

    http/app.Handler ─ auth.same_token / TokenSigner ─ context.resolve (URL, query, body → ApiRequest)
      ├─ healthz, discovery, openapi/serve            (non-resource paths)
      ├─ http/watch.serve_watch                       (?watch=1: registry/storage.Watcher → chunks)
      └─ handlers/{reads,writes,patches,deletes,subresources}
           writes: guards (decode checks) → validation/fields → admission/{defaults,create,services}
                   → patch/{jsonpatch,strategic,apply} → registry/objects (metadata rules)
                   → registry/storage.Store (memory + registry/db sqlite) → watchers
           reads:  registry/storage + registry/selectors → printers/tables (as=Table)
    every failure: http/status_errors.StatusError → a `kind: Status` body

Import the submodules directly; the packages import nothing so that `import runtime.apiserver.x` stays
cheap.
"""
