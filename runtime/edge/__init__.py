"""runtime/edge: `kedge edge run` — the edge's link to the cloud, its cache, its node, pods and devices.

    launcher.py    `kedge edge run` before typer loads: config, logging, signals → run.EdgeRuntime
    run.py         EdgeRuntime: builds the parts below and runs them as named root tasks
    layout.py      EdgeFiles: every file of the edge role under --root
    edgehub.py     EdgeHub: dial (dial.py), keepalive, reconnect, outbox (outbox.py), request/response,
                   silent-cloud watch (answers.py)
    link.py        Hub: what the parts below need from EdgeHub (send, request, connected, status)
    agent.py       cloud → edge messages: cache in metastore.py, ack after commit, drive pods and devices
    metastore.py   the offline cache (sqlite): every object the cloud sent; cacherefs.py reads refs from it
    nodestatus.py  register the Node, patch its status, keep the Lease (KubeEdge clouds); nodeinfo.py
    pods/          the kubelet on Docker (see its map)          devices/   the MQTT device plane (its map)
    streams/       logs, exec, attach, port-forward sessions: the tunnel dialled per session, Docker
    statusd.py     local health: GET /status, /metrics on a unix socket and 127.0.0.1:10551 (h11)
    usage/         resource usage of the node and its containers (cgroup files), reported to a kedge cloud
    metrics.py     EdgeMetrics: kedge_edge_*; metricfamilies.py (prometheus_client) loaded on first use
    engine.py      the Docker engine's version and live-restore flag (http11.py, no SDK)
    renew.py       node certificate renewal with the current certificate (certclient.py)
    identity.py    the node certificate on disk and its recorded facts (node, notAfter)
    certclient.py  the one client of the cloud's certificate server (:10002): CA, node name, certificate
    join/          `kedge join`: options, preflight checks, the steps that change the machine (its map)
    reset.py       `kedge reset edge`: stop the runtime, remove containers, state, certificates, config

A cloud message: EdgeHub._reader → decode → a response resolves request(); anything else →
Agent.on_message → MetaStore (commit) → ack → PodManager.sync_pod / delete_pod, DevicePlane.on_cloud.
An edge report: NodeStatus / PodManager.on_status / devices uplink → Hub.send → websocket, or the
durable outbox while offline (drained in order on reconnect).
runtime/edge never imports runtime/cloud (tests/unit/test_layers.py).
"""
