"""runtime/apiserver/validation/schema: custom resources against their CRD's structural schema.

    values.py          the OpenAPI v3 checks (type, enum, bounds, lengths, pattern, format, required, ...)
                       and the list-type set/map invariants, with kube-openapi's messages and causes
    formats.py         the string formats apiextensions validates
    nodes.py           a schema compiled once per CRD into nodes the walks read (what to check where)
    defaulting.py      `default:` values and non-nullable nulls, at decoding
    rules.py           x-kubernetes-validations CEL rules (common-expression-language, loaded lazily)
    celquantity.py     Kubernetes' CEL quantity library functions for those rules
    customresource.py  one write's errors: schema, list invariants, then the rules
    structural.py      a CRD's own schemas on create/update: structural, defaults, rules compile

Flow: handlers.writes → defaulting.default (every decoded write) → fields.validate →
customresource.errors → a 422 `Invalid` listing every error; CRD writes → structural.crd_schema_errors.
Pruning of unknown fields stays with the other kinds' in validation/fieldtree.py.
"""
