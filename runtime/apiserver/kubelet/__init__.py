"""runtime/apiserver/kubelet: pods/log, pods/exec, pods/attach, pods/portforward — passed to the kubelet.

    location.py  log_location, stream_location   kube-apiserver's checks (container, node) and the
                                                 kubelet's address (the node's InternalIP and kubelet port)
    proxy.py     KubeletProxy                    logs streamed, upgrades spliced byte for byte
    dial.py      KubeletClient, connect          TLS with the server's kubelet-client certificate, the
                                                 request and the answer's head; a failed dial as
                                                 `error dialing backend "https://…": <cause>`

Flow: http/app.Handler (pods + one of the four subresources) → KubeletProxy.serve → location → dial:
TLS to the kubelet (for kedge edges: the cloud's stream endpoint, runtime/cloud/streams) → the answer back.
"""
