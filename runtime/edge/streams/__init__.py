"""runtime/edge/streams: the edge's end of `kubectl logs/exec/attach/port-forward` (issue 19).

    server.py      EdgeStreams: an open message from the link → a task that dials the session's tunnel
                   websocket (runtime/protocol/tunnel.py) and serves it by kind
    containers.py  which Docker container (or sandbox) a session means, by the pod manager's labels
    logs.py        the container's log with kubelet's options (docker SDK; the stream read on a thread)
    bulk.py        the engine's log stream read in blocks: chunked coding and frame headers undone per block
    logfile.py     a follow served from the container's json-file log itself, when the edge can read it
    execs.py       exec and attach through the engine's hijacked sockets; exit code, resize
    ports.py       port-forward: a TCP connection to the pod's sandbox address
    pump.py        a blocking reader on a thread of its own, handed to the loop with backpressure

Flow: EdgeHub → EdgeRuntime._on_message → EdgeStreams.on_open → dial wss://<hub>/<project>/<node>/
streams/<sid> → CONTROL ready|error → data frames → close. Nothing here listens: the edge only dials.
"""
