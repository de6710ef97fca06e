"""runtime/cloud/install: `kedge init` and `kedge reset cloud` — put the cloud role in place, take it away.

    init.py       manifests(req, progress) / install(req, progress)  the phases of init, in order
    preflight.py  Preflight, check_api/permissions/addresses/ports/daemonsets  named checks
    existing.py   check_cluster(), to_apply()            what the cluster already holds (converge, keep)
    manifests.py  InstallOptions, render(), to_yaml()    templates/ → the objects init applies
    versions.py   for_server(), ref()                    apiVersions the server serves (FlowSchema …)
    steps.py      connect(), ensure_pki, start_apiserver/start_cloud, wait_*, InstallRecord
    procs.py      running_pid, start_detached, wait_cloud_ready, exclusive()  local processes, the lock
    systemd.py    the kedge-cloud.service unit (host mode under systemd, root / only)
    reset.py      reset_cloud(...)                       stop, delete objects, remove files: a row each

The CLI (kubeedge_cli/commands/init.py, reset.py) parses, calls `init.install`/`init.manifests` or
`reset.reset_cloud` once and renders; init's progress comes back through `init.Progress`.
Import the submodules directly; this package imports nothing.
"""
