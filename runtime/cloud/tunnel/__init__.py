"""runtime/cloud/tunnel: where API servers reach the stream endpoint for an edge node (docs/streams.md).

    endpoint.py   KubeletEndpoint, KubeletEndpoints   the override of the nodes' InternalIP and kubelet
                                                      port: rewrite registration/status patches, ensure
    replica.py    endpoint_of, TunnelReplica, hold    ``[kubelet_endpoint]`` → this replica's endpoint;
                                                      dnat: claim the tunnel port; write connected nodes
    ports.py      claim, release, read, Record        the ``tunnelport`` ConfigMap (KubeEdge's shape)
    dnat.py       Rules, DnatManager, run_dnat        the control-plane hosts' side: iptables nat rules
                                                      from the ConfigMap (``kedge cloud tunnel-dnat``)

Flow (dnat): cloudcore.run → TunnelReplica.run claims a port → controllers write it into the nodes
connected here (EdgeRequests rewrites the edges' node writes; ``hold``/``ensure`` patch on connect) →
kube-apiserver dials <edge InternalIP>:<tunnel port> → the DaemonSet's DNAT rule → this replica's
stream endpoint. Import the submodules directly; this package imports nothing.
"""
