"""runtime/cloud: the cloud role, `kedge cloud run` (KubeEdge's cloudcore), and its install.

    cloudcore.py      run(cfg, stop)        builds everything below, runs it as named root tasks
    context.py        CloudContext          API client, CA, PKI store, serving TLS, registry, readiness
    pki_store.py      PKIStore              CA, token key, join tokens, serving certificate in Secrets
    bootstrap.py      Bootstrap, serve()    HTTPS :10002: /ca.crt, /edge.crt (CSR → certificate), /node
    hub/              CloudHub              the edges' websocket channel :10000 (mTLS, reliable delivery)
    controllers/      CloudControllers      objects down to edges, edge requests answered, node liveness,
                                            replicas
    devices/          DeviceController      Devices/DeviceModels down, DeviceStatus up
    streams/          StreamEndpoint        kubelet's stream paths for API servers; tunnels to the edges
    lease_gate.py     LeaseGate             holds new sessions and ack-state writes while renewals lag
    status_socket.py  serve_status, status  the cloud's part of `kedge status` on a 0600 unix socket,
                                            and the edges' resource usage (kubelet routes, /usage)
    usage/            UsageStore            the edges' resource usage reports, served as kubelet's
                                            /metrics/resource and /stats/summary (`kubectl top`)
    install/          init, reset           `kedge init` / `kedge reset cloud`

How the process is put together (cloudcore.run): build_context → build_edges (one CloudHub; the
controllers and the Device controller each handed the API client and that hub) → root tasks: health,
bootstrap, serving-certificate renewal, token GC, the hub, the controllers (+ status socket), the Device
controller. Nothing is looked up at run time: what a part needs is passed to it.

An edge's request (e.g. a Lease update): hub/ session → CloudHub subscribers → CloudControllers →
controllers/requests.py checks it as the node authorizer would → Kubernetes → the answer back through
``hub.send``. An object down (e.g. a pod bound to an edge node): controllers/edgectl.py's watch →
controllers/world.py (what each node should hold) → ``hub.send(node, msg, reliable_key=uid)`` → the
edge's ack → ack state (controllers/syncstore.py). Devices take the same path in devices/.

Import the submodules directly; this package imports nothing.
"""
