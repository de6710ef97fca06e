"""The cloud's device plane (design.md §4 to §6, issue 15): KubeEdge's devicecontroller, in kedge.

    world.py           DeviceWorld: which node holds which Devices and DeviceModels (sans I/O)
    reports.py         the edge's twin/state reports → DeviceStatus merge patches (sans I/O)
    status_objects.py  DeviceStatuses: one DeviceStatus per Device, reports coalesced, one write in flight
    controller.py      DeviceController: watches → world → reliable sends through the hub; reports from
                       the hub → DeviceStatuses; ack state in ObjectSyncs (controllers/syncstore.py)

Flow: runtime/cloud/cloudcore.py builds a DeviceController with the API client, the CloudHub and an
ack-state store of its own, and subscribes it to the hub. Device/DeviceModel watch events feed the
world; for each node they touch, the difference from what that node was told goes down (membership
update, then models, then devices); acks are recorded per ``<node>.<uid>``; a reconnect resyncs from
them. Reports from a node go up to the DeviceStatus of a Device bound to that node, one write in flight
per Device.
"""

from runtime.cloud.devices.controller import ACK_OWNER, DeviceController

__all__ = ["ACK_OWNER", "DeviceController"]
