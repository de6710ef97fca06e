"""runtime/edge/join: `kedge join`, runtime side — check, then converge the machine to a joined edge.

    options.py   JoinOptions                 the flags, the server address parsed once (host, hub, cert ports)
    checks.py    preflight(opts) -> [Check]  ten named checks in order, nothing changed; failed(checks)
    steps.py     Joiner(opts).steps()        the steps that change the machine, each idempotent; undo()

    preflight: token → cert-port → hub-port (CloudHub asks for a certificate) → ca-hash (CA pinned by the
      token, runtime/edge/certclient.py) → server-cert → node-name (+ the cloud's clock) → docker →
      disk-space → existing-state
    steps: pin the CA → key + CSR → certificate (certclient, recorded by runtime/edge/identity.py) →
      edge.toml → start `kedge edge run` (systemd or detached) → wait until its status says Ready

The CLI (kubeedge_cli/commands/join.py) parses the flags, runs preflight, then the steps, and renders.
"""

from runtime.edge.join.checks import CHECKS, Check, failed, hub_protocol, preflight
from runtime.edge.join.options import JoinOptions
from runtime.edge.join.steps import Joiner, Step

__all__ = ["CHECKS", "Check", "JoinOptions", "Joiner", "Step", "failed", "hub_protocol", "preflight"]
