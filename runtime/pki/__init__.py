"""runtime/pki: the cluster CA, certificates it issues, CSR signing and join tokens (design.md §4).

certs   CA (ECDSA P-256), serving certificate, edge certificate from a DER CSR, key hash
tokens  `<sha256 of CA DER>.<HS256 JWT>` join tokens: make, split, verify (pure functions)
tls     ssl contexts for the cloud's servers and the edge's client

No Kubernetes access here (the edge shares this package): keeping the CA and tokens in Secrets is the
cloud's, in runtime/cloud/pki_store.py.
"""

ANN_KEY_HASH = "kedge.io/key-hash"  # Node annotation: sha256 of the node's public key, set at first join
