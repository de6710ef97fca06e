"""runtime/apiserver/patch: how a write changes an object — patches, server-side apply, managedFields.

    jsonpatch.py        JSON patch (RFC 6902) and JSON merge patch (RFC 7386); PatchError
    patchmeta.py        patchStrategy / patchMergeKey struct tags of the built-in kinds
    strategic.py        strategic merge patch: directives, merging maps and keyed lists
    strategic_order.py  the order of merged lists, as apimachinery's strategicpatch computes it
    strategic_go.py     Go equality, stable sort and %v rendering the results depend on
    apply.py            server-side apply and update_managed_fields (structured-merge-diff's Updater)
    apply_merge.py      the typed merge and field removal apply uses
    managers.py         managedFields entries: who owns which fields
    fieldsets.py        field sets and their FieldsV1 encoding
    createfields.py     the managedFields of a create, built straight from the new object

Flow: handlers.patches.patch picks jsonpatch / strategic / apply by content type; every write then
records ownership with apply.update_managed_fields (fieldsets ↔ managers).
"""
