"""runtime/apiserver/printers: server-side printing, the meta.k8s.io/v1 Table `kubectl get` asks for.

    tables.py  to_table(): picks the printer (built-in, CRD additionalPrinterColumns, default)
    core.py    pods, nodes, events, and the helpers every printer shares (AGE, columns)
    kinds.py   workload, network and configuration kinds, and PRINTERS (every built-in printer)

Flow: handlers.reads (Accept: …;as=Table) → tables.to_table → kinds.PRINTERS[resource] → row cells.
"""
