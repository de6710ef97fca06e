"""runtime/cloud/streams: `kubectl logs/exec/attach/port-forward` for pods on this cloud's edges (issue 19).

    endpoint.py  StreamEndpoint   the kubelet-like TLS server API servers dial ([stream] port): client
                                  certificate of the cluster CA with an API server's CN, pod → node
    tunnels.py   Tunnels          per session: the open message over the node's link, the edge's tunnel
                                  websocket on the hub's port (runtime/protocol/tunnel.py), caps, closes
    sessions.py  serve_command,   an upgraded session (runtime/streams) carried over tunnels as
                 serve_portforward  channel frames; port-forward: a tunnel per connection
    bearer.py    BearerReviews    a bearer token on /metrics/resource, /stats/summary only: TokenReview +
                                  SubjectAccessReview (nodes/metrics, nodes/stats, get), cached briefly
    serve.py     serve_streams    the root task: endpoint TLS from the serving certificate and the CA

Flow (logs): API server ─GET /containerLogs/ns/pod/c─▶ endpoint ─▶ Kubernetes: the pod's node ─▶
Tunnels.open: ``open`` message over CloudHub ─▶ edge dials wss://hub/…/streams/<sid> ─▶ CONTROL ready ─▶
STDOUT frames ─▶ chunked HTTP body. Upgrades (exec, attach, port-forward) end in the endpoint
(runtime/streams terminates SPDY/WebSocket) and only channel frames cross the tunnel.
"""
