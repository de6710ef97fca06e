"""Clock-free tests of the sans-I/O delivery core (runtime/protocol/delivery.py)."""

from __future__ import annotations

import pytest

from runtime.protocol import ack, decode, encode, new_message, response_to
from runtime.protocol.delivery import (
    Acked,
    AckEntry,
    AckState,
    Current,
    Downlink,
    is_ack,
    plan_resync,
    resync_messages,
)
from runtime.protocol.message import Message


def pod(name: str, rv: str, op: str = "insert", uid: str = "u1") -> Message:
    body = {"metadata": {"name": name, "namespace": "default", "uid": uid, "resourceVersion": rv}}
    return new_message("edgecontroller", "resource", op, f"default/pod/{name}", body, resourceversion=rv)


def test_unacked_insert_is_resent_until_acked() -> None:
    link = Downlink(resend_after=5.0)
    link.send(pod("web", "7"), "u1", now=0.0)
    first = link.data_to_send()
    assert len(first) == 1
    link.tick(now=4.9)
    assert link.data_to_send() == []
    link.tick(now=5.0)
    assert link.data_to_send() == first  # the same message, same msg_id
    link.tick(now=10.0)
    assert link.data_to_send() == first
    events = link.receive(ack(first[0]), now=10.1)
    assert events == [Acked("u1", "7", "insert", "default/pod/web", first[0].msg_id)]
    link.tick(now=60.0)
    assert link.data_to_send() == []
    assert link.pending_count == 0
    assert link.resends == 2


def test_ack_roundtrips_through_codec() -> None:
    link = Downlink()
    link.send(pod("web", "7"), "u1", now=0.0)
    (m,) = link.data_to_send()
    wire_ack = decode(encode(ack(decode(encode(m)))))
    assert [e.key for e in link.receive(wire_ack, now=1.0)] == ["u1"]


def test_newer_message_replaces_pending_and_old_ack_is_ignored() -> None:
    link = Downlink(resend_after=5.0)
    old = pod("web", "7")
    new = pod("web", "8", op="update")
    link.send(old, "u1", now=0.0)
    link.send(new, "u1", now=1.0)
    assert link.data_to_send() == [old, new]
    assert link.pending_count == 1
    assert link.receive(ack(old), now=2.0) == []  # stale ack: the edge has 7, 8 is still pending
    assert link.is_pending("u1")
    link.tick(now=6.0)
    assert link.data_to_send() == [new]
    assert [e.rv for e in link.receive(ack(new), now=6.1)] == ["8"]
    assert link.pending_count == 0


def test_duplicate_ack_and_non_ack_messages_are_ignored() -> None:
    link = Downlink()
    m = pod("web", "7")
    link.send(m, "u1", now=0.0)
    a = ack(m)
    assert len(link.receive(a, now=1.0)) == 1
    assert link.receive(a, now=1.1) == []
    not_ok = response_to(m, {"Object": None})  # a response, but not "OK"
    link.send(m, "u1", now=2.0)
    assert link.receive(not_ok, now=2.1) == []
    keepalive = new_message("websocket", "resource", "keepalive", "node", "ping")
    assert link.receive(keepalive, now=2.2) == []
    assert link.pending_count == 1


def test_retries_run_out_but_message_is_never_dropped() -> None:
    link = Downlink(resend_after=1.0, max_resends=3)
    m = pod("web", "7")
    link.send(m, "u1", now=0.0)
    link.data_to_send()
    sent = 0
    for t in range(1, 20):
        link.tick(now=float(t))
        sent += len(link.data_to_send())
    assert sent == 3
    assert link.next_deadline() is None
    assert link.pending_count == 1
    link.reconnected(now=100.0)
    assert link.data_to_send() == [m]
    assert link.next_deadline() == 101.0
    link.tick(now=101.0)
    assert link.data_to_send() == [m]  # resends start over after a reconnect


def test_offline_keeps_pending_and_reconnect_sends_all_in_order() -> None:
    link = Downlink(resend_after=5.0)
    a, b, c = pod("a", "1", uid="ua"), pod("b", "2", uid="ub"), pod("c", "3", uid="uc")
    link.send(a, "ua", now=0.0)
    link.disconnected()
    assert link.data_to_send() == []  # queued output dropped with the session
    link.send(b, "ub", now=1.0)
    link.send(c, "uc", now=2.0)
    link.tick(now=50.0)
    assert link.data_to_send() == []
    assert link.next_deadline() is None
    link.receive(ack(a), now=3.0)  # a late ack from the old session still counts
    link.reconnected(now=60.0)
    assert link.data_to_send() == [b, c]
    assert link.next_deadline() == 65.0


def test_resends_queued_behind_a_slow_writer_collapse() -> None:
    link = Downlink(resend_after=1.0)
    m = pod("a", "1")
    link.send(m, "u1", now=0.0)  # the writer is stuck: nobody calls data_to_send for a while
    for t in range(1, 6):
        link.tick(now=float(t))
    b = pod("b", "1", uid="ub")
    link.send(b, "ub", now=6.0)
    link.tick(now=7.0)
    assert link.data_to_send() == [m, b]


def test_next_deadline_is_earliest_due() -> None:
    link = Downlink(resend_after=5.0)
    assert link.next_deadline() is None
    link.send(pod("a", "1", uid="ua"), "ua", now=0.0)
    link.send(pod("b", "1", uid="ub"), "ub", now=2.0)
    assert link.next_deadline() == 5.0
    link.tick(now=5.0)
    assert link.next_deadline() == 7.0


def test_forget_drops_pending() -> None:
    link = Downlink()
    m = pod("a", "1")
    link.send(m, "u1", now=0.0)
    link.forget()
    assert link.pending_count == 0 and link.data_to_send() == []
    assert link.receive(ack(m), now=1.0) == []


def test_forget_some_keys_drops_only_their_pending_and_queued_output() -> None:
    """Each controller forgets its own keys on a new cache epoch (pods vs devices share a Downlink)."""
    link = Downlink()
    a, b = pod("a", "1"), pod("b", "1")
    link.send(a, "ua", now=0.0)
    link.send(b, "ub", now=0.0)
    link.forget(["ua"])
    assert [k for k, _ in link.pending()] == ["ub"]
    assert link.data_to_send() == [b]
    assert link.receive(ack(a), now=1.0) == []


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        Downlink(resend_after=0)
    with pytest.raises(ValueError):
        Downlink(max_resends=-1)


def test_is_ack() -> None:
    m = pod("a", "1")
    assert is_ack(ack(m))
    assert not is_ack(m)
    assert not is_ack(Message(operation="response", content="OK"))  # no parent


# --- ack state ---


def test_ack_state_apply_and_for_node() -> None:
    st = AckState()
    st.apply("n1", Acked("u1", "7", "insert", "default/pod/a", "m1"))
    st.apply("n1", Acked("u2", "3", "update", "default/configmap/c", "m2"))
    st.apply("n1.x", Acked("u9", "1", "insert", "default/pod/z", "m3"))  # a node name with a dot
    assert st.for_node("n1") == {
        "u1": AckEntry("default/pod/a", "7"),
        "u2": AckEntry("default/configmap/c", "3"),
    }
    assert st.for_node("n1.x") == {"u9": AckEntry("default/pod/z", "1")}
    assert "n1.u1" in st.entries
    st.apply("n1", Acked("u1", "", "delete", "default/pod/a", "m4"))
    assert st.get("n1", "u1") is None
    assert AckState.from_dict(st.to_dict()) == st


def test_ack_state_epoch() -> None:
    st = AckState()
    st.record("n1", "u1", "default/pod/a", "7")
    st.record("n2", "u2", "default/pod/b", "7")
    assert st.observe_epoch("n1", "e1") is False  # first sighting: nothing to forget
    assert st.observe_epoch("n1", "e1") is False
    assert st.observe_epoch("n1", "") is False  # KubeEdge peer: no epoch, keep state
    assert st.get("n1", "u1") is not None
    assert st.observe_epoch("n1", "e2") is True
    assert st.for_node("n1") == {}
    assert st.get("n2", "u2") is not None  # other nodes untouched


# --- resync ---


def test_resync_sends_only_changes() -> None:
    acked = {
        "u-same": AckEntry("default/pod/same", "5"),
        "u-changed": AckEntry("default/configmap/cm", "5"),
        "u-gone": AckEntry("default/secret/gone", "9"),
    }
    current = {
        "u-same": Current("default/pod/same", "5", {"k": 1}),
        "u-changed": Current("default/configmap/cm", "6", {"k": 2}),
        "u-new": Current("default/pod/new", "1", {"k": 3}),
    }
    plan = plan_resync(current, acked)
    assert [(a.operation, a.key, a.resource, a.rv) for a in plan] == [
        ("delete", "u-gone", "default/secret/gone", ""),
        ("update", "u-changed", "default/configmap/cm", "6"),
        ("insert", "u-new", "default/pod/new", "1"),
    ]
    assert plan[0].obj == {"metadata": {"uid": "u-gone", "name": "gone", "namespace": "default"}}


def test_resync_rv_is_opaque_not_ordered() -> None:
    # An RV that looks "older" is still a change: order comes from the watch, not from RV comparison.
    plan = plan_resync({"u": Current("default/pod/a", "10", {})}, {"u": AckEntry("default/pod/a", "9")})
    assert [a.operation for a in plan] == ["update"]
    plan = plan_resync({"u": Current("default/pod/a", "9", {})}, {"u": AckEntry("default/pod/a", "10")})
    assert [a.operation for a in plan] == ["update"]


def test_resync_uid_change_is_delete_then_insert() -> None:
    acked = {"old-uid": AckEntry("default/pod/web", "5")}
    current = {"new-uid": Current("default/pod/web", "8", {"metadata": {"uid": "new-uid"}})}
    msgs = resync_messages(current, acked)
    assert [(k, m.operation, m.resource, m.resourceversion) for k, m in msgs] == [
        ("old-uid", "delete", "default/pod/web", ""),
        ("new-uid", "insert", "default/pod/web", "8"),
    ]
    # Keyed by UID both survive in one Downlink (keyed by name the insert would replace the delete).
    link = Downlink()
    for k, m in msgs:
        link.send(m, k, now=0.0)
    assert link.pending_count == 2
    assert [m.operation for m in link.data_to_send()] == ["delete", "insert"]


def test_resync_cluster_scoped_tombstone_and_nothing_to_do() -> None:
    plan = plan_resync({}, {"u": AckEntry("null/node/e1", "3")})
    assert plan[0].obj == {"metadata": {"uid": "u", "name": "e1"}}
    assert plan_resync({"u": Current("null/node/e1", "3", {})}, {"u": AckEntry("null/node/e1", "3")}) == []
    assert plan_resync({}, {}) == []


def test_resync_messages_shape() -> None:
    current = {"u": Current("default/device/d", "4", {"x": 1})}
    ((key, m),) = resync_messages(current, {}, source="devicecontroller")
    assert key == "u"
    assert (m.source, m.group, m.operation, m.resource, m.resourceversion, m.content) == (
        "devicecontroller",
        "resource",
        "insert",
        "default/device/d",
        "4",
        {"x": 1},
    )
    assert m.msg_id and m.timestamp > 0
    assert decode(encode(m)) == m


def test_full_cycle_resync_after_epoch_change() -> None:
    st = AckState()
    link = Downlink()
    current = {f"u{i}": Current(f"default/pod/p{i}", "1", {}) for i in range(3)}
    for k, m in resync_messages(current, st.for_node("n")):
        link.send(m, k, now=0.0)
    for m in link.data_to_send():
        for ev in link.receive(ack(m), now=0.1):
            st.apply("n", ev)
    st.observe_epoch("n", "e1")
    assert resync_messages(current, st.for_node("n")) == []  # nothing changed: nothing sent
    assert st.observe_epoch("n", "e2") is True  # rebuilt cache: everything again
    assert len(resync_messages(current, st.for_node("n"))) == 3
