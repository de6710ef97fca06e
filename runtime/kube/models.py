"""lightkube-models modules by name, for the embedded API server's /openapi/v2 and field validation.

The API server turns the model classes of the kinds it serves (and every type they reach) into swagger
definitions (runtime/apiserver/openapi/defs.py); it names modules as `<group>_<version>`, so this is the
table from that name to the module. Imported explicitly, so the layer test sees lightkube stay in
runtime/kube and PyInstaller bundles every module listed. A served kind whose module is missing here
fails tests/unit/apiserver/test_openapi_models.py.
"""

from __future__ import annotations

from types import ModuleType

from lightkube.models import (  # noqa: F401 (collected into MODELS below)
    apiextensions_v1,
    apiregistration_v1,
    apps_v1,
    authentication_v1,
    authorization_v1,
    autoscaling_v1,
    batch_v1,
    coordination_v1,
    core_v1,
    discovery_v1,
    events_v1,
    flowcontrol_v1,
    meta_v1,
    policy_v1,
    rbac_v1,
    resource,
    runtime,
    scheduling_v1,
    scheduling_v1alpha3,
    util_intstr,
)

# every module imported above, by its own name: the import list is the one place to add a group-version
MODELS: dict[str, ModuleType] = {
    name: value
    for name, value in dict(globals()).items()
    if isinstance(value, ModuleType) and value.__name__ == f"lightkube.models.{name}"
}
