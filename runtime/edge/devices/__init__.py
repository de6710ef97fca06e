"""runtime/edge/devices: the MQTT device plane — broker, bridge, twins, reports to the cloud.

Modules and the flow through them (design.md §6):
- ``mqttcodec`` — MQTT 3.1.1 packets, bytes in / packets out (sans-I/O).
- ``topics``    — filter validation, ``$``-topic rules and the subscription trie.
- ``broker``    — the embedded broker (asyncio): sessions, QoS 0/1, retained, will, keepalive.
- ``external``  — the same bridge as a paho-mqtt client of an existing broker (paho on its thread).
- ``values``    — typed values: the one mapping between twin-wire and DeviceModel type names.
- ``twins``     — twin logic without I/O: apply an update, rejections, result/document/delta payloads.
- ``store``     — twins, device states and the report queue in the edge's sqlite cache (group commit).
- ``bridge``    — KubeEdge's ``$hw/…`` topics → twins → answers on MQTT + report rows.
- ``uplink``    — report rows → ``twin/edge_updated`` / ``state/update`` to the cloud, in order, paced.
- ``plane``     — wiring for `kedge edge run`: cloud Device/DeviceModel → specs and desired values.
- ``trouble``   — say a problem once, then count it.
- ``dmi/``      — KubeEdge's Device Management Interface for gRPC mappers (only when dmi.enabled; its map).

device PUBLISH → broker → bridge.handle → store.write (commit) → result/document/delta on MQTT
                                                    ↘ reports → uplink → EdgeHub (outbox offline) → cloud
cloud Device/DeviceModel → Agent (cache + ack) → plane.on_cloud → specs, expected → delta on MQTT
"""
