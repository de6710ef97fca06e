"""runtime/apiserver/openapi: the /openapi/v2 and /openapi/v3 documents kubectl downloads.

    serve.py    OpenAPI: answers /openapi/v2 and /openapi/v3 with ETags, cached per registry change
    v2.py       the swagger 2.0 document (paths and definitions)
    ops.py      the REST operations of a resource type, shared by v2 and v3
    defs.py     definitions of the built-in kinds (from lightkube-models) and of CRDs
    gnostic.py  the v2 document as the gnostic protobuf kubectl prefers

Flow: http.app → serve.OpenAPI → v2.build (ops + defs) → JSON or gnostic protobuf.
validation.fieldtree reads the same definitions to find unknown fields.
"""
