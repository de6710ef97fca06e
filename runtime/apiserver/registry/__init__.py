"""runtime/apiserver/registry: the kinds served and the objects stored.

    resources.py       ResourceType and Registry: built-in kinds plus CRD-defined ones
    crds.py            CrdController: a stored CRD serves its kinds once named; the naming and
                       establishing steps' status writes; CRD validation
    crdnames.py        the accepted names and NamesAccepted/Established conditions, as decided by
                       kube-apiserver's naming and establishing controllers
    objects.py         metadata rules of every write (names, uid, timestamps, generation)
    selectors.py       label selectors, parsed and matched as kube-apiserver does
    fieldselectors.py  field selectors and each kind's field labels
    storage.py         Store: objects in memory, one resourceVersion, watchers with bounded buffers
    db.py              sqlite (WAL) persistence on one writer thread, batched commits
    eventttl.py        Events expire TTL after their last write (kube-apiserver --event-ttl)
    wireorder.py       objects in the field order kube-apiserver writes them (applied once, on store)

Flow: handlers → objects.prepare_create/update → storage.Store.commit → db (one writer thread)
→ Watcher queues; reads filter Store entries with selectors and fieldselectors.
"""
