"""runtime/pki: the cluster CA, certificates it issues, CSR signing and join tokens (design.md §4).

    certs.py    CA (ECDSA P-256), serving certificate, edge certificate from a DER CSR, key hash
    tokens.py   `<sha256 of CA DER>.<HS256 JWT>` join tokens: make, split, verify (pure functions)
    tls.py      ssl contexts: the cloud's servers, and verify_context (no cryptography) for the clients

A join: the cloud makes a token (tokens; its signing key kept in a Secret by runtime/cloud/pki_store.py)
→ the edge fetches the CA and checks it against the token's hash (runtime/edge/certclient.py) → sends a
CSR with the token → the cloud's bootstrap server verifies the token (tokens) and signs the CSR
(certs.CA.sign_node_csr) → the edge keeps the certificate (runtime/edge/identity.py) and dials CloudHub
with it (tls on both ends).
Renewal sends a CSR authenticated by the current certificate instead of a token. No Kubernetes access
here (the edge shares this package): keeping the CA and tokens in Secrets is the cloud's.
"""

ANN_KEY_HASH = "kedge.io/key-hash"  # Node annotation: sha256 of the node's public key, set at first join
