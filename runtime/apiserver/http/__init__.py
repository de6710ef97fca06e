"""runtime/apiserver/http: the HTTP side of the API server — from an aiohttp request to a response.

    app.py            Handler: authenticate, resolve, dispatch by path and verb, render errors
    auth.py           the admin bearer token and the service-account JWTs this server signs
    certs.py          the serving certificate (private CA in the data dir, leaf with the dialled SANs)
    context.py        resolve(request) -> ApiRequest: the resource type, name, verb, query and decoded body
    protobuf.py       kubectl's protobuf request bodies decoded to JSON dicts
    watch.py          serve_watch: a chunked stream of watch events, resumable from a resourceVersion
    healthz.py        /healthz, /livez, /readyz with named checks
    metrics.py        ApiMetrics: kedge_apiserver_* (requests by verb/resource/code, latency) for /metrics
    discovery.py      /api, /apis and the per-group-version resource lists
    status_errors.py  StatusError and one constructor per reason (not_found, conflict, invalid, …)

Flow: app.Handler.__call__ → auth → context.resolve → handlers/* or watch/healthz/discovery/openapi;
a StatusError raised anywhere below is rendered once, in app, as a `kind: Status` body.
"""
