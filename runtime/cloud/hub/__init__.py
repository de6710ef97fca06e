"""runtime/cloud/hub: CloudHub, the cloud end of the edge channel (design.md §4, docs/protocol.md "Channel").

    server.py       CloudHub: the websocket server on :10000 (mTLS), one session per node, a Downlink
                    per node that outlives its sessions, one housekeeping task (silence, resends)
    handshake.py    vet_upgrade(): node from the client certificate, path and headers must agree (403
                    before any message); session_info(): who the peer is (kedge or KubeEdge, epoch)
    session.py      Session: one edge's reader and writer, rate limit, send queue; SessionInfo, LogOnce
    events.py       EdgeEvents (CloudHub's base): subscribe() and the fan-out to each subscriber
    metrics.py      HubMetrics: kedge_cloudhub_* on the registry passed in

An edge's message: handshake.vet_upgrade → server._handler → Session reader → server._upstream adds
``node/<node>/`` → EdgeEvents._tell_message → each controller's ``on_message``. The way down:
``CloudHub.send(node, msg, reliable_key=uid)`` → the node's Downlink (runtime/protocol/delivery.py) →
Session writer; the edge's ack → EdgeEvents._tell_ack → ``on_ack``. runtime/cloud/cloudcore.py builds the
hub and hands it to the controllers; nothing finds it any other way.

Import the submodules directly; this package imports nothing.
"""
