"""runtime/apiserver/admission: what kube-apiserver adds to an object before it is stored.

    defaults.py  decode-time defaults (pkg/apis/*/v1/defaults.go), run on every write and patch result
    pods.py      the pod and pod-spec part of them (containers, probes, volumes, image tags)
    typed.py     zero values a typed (Go struct) server always serialises
    create.py    create-only admission: ServiceAccount, Priority, tolerations, QoS, status reset
    services.py  Service cluster IPs and node ports, allocated on create and on type changes

Flow: handlers.writes → defaults.default_object (every write) → create.admit_create (creates only)
→ services.allocate_service (Services); failures are AdmissionError, mapped to a Status in guards.
"""
