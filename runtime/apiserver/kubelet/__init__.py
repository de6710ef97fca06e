"""runtime/apiserver/kubelet: pods/log, pods/exec, pods/attach, pods/portforward — passed to the kubelet.

    location.py  log_location, stream_location   kube-apiserver's checks (container, node) and the
                                                 kubelet's address (the node's InternalIP and kubelet port)
    proxy.py     KubeletProxy                    logs streamed, upgrades spliced byte for byte, with
                                                 the server's kubelet-client certificate

Flow: http/app.Handler (pods + one of the four subresources) → KubeletProxy.serve → location → TLS to
the kubelet (for kedge edges: the cloud's stream endpoint, runtime/cloud/streams) → the answer back.
"""
