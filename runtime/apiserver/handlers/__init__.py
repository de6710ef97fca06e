"""runtime/apiserver/handlers: the verbs, each an async function (api, ctx) -> (status, body).

    reads.py         get, list (selectors, pagination, Table and metadata views), list_bytes for watch
    writes.py        create, update (and save_update, the tail of every write): validate → admit → store
    patches.py       patch (JSON, merge, strategic) and server-side apply: compute, then writes.save_update
    deletes.py       delete and deletecollection: preconditions, finalizers, graceful pod deletion
    subresources.py  pods/binding, pods/eviction, serviceaccounts/token, */scale, namespaces/finalize
    reviews.py       TokenReview, SubjectAccessReview and the Self* reviews: answered, never stored
    guards.py        checks before a write is computed: envelope types, admission refusals, allocation
    semantics.py     the pure functions handlers call (patch, selectors, admission, tables) in one place

Flow of a write: writes.create → guards.decoding/check_gvk → validation.fields → admission.defaults
and admission.create → registry.objects.prepare_create → Store.commit; update/patch compute the new
object (patches.py, with patch/*) first and end in writes.save_update.
"""
