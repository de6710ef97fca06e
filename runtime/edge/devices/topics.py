"""MQTT topic filters: validation and a trie of subscriptions matched per PUBLISH.

Rules (MQTT 3.1.1 §4.7): levels split on ``/``; ``+`` matches one level, ``#`` the rest including the
parent level, and both only as a whole level (``#`` only last). A filter whose first level is a
wildcard never matches a topic that starts with ``$`` (MQTT-4.7.2-1) — so ``#`` does not see
``$hw/…``, while ``$hw/#`` does. A trie keeps a publish at O(levels) however many devices subscribe.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

K = TypeVar("K")


def valid_filter(f: str) -> bool:
    if not f or len(f.encode("utf-8")) > 65535 or "\x00" in f:
        return False
    levels = f.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return False
        if "+" in level and level != "+":
            return False
    return True


def valid_topic(t: str) -> bool:
    """A PUBLISH topic: non-empty, no wildcards."""
    return bool(t) and "+" not in t and "#" not in t and "\x00" not in t


def matches(f: str, topic: str) -> bool:
    """One filter against one topic (used for retained messages on SUBSCRIBE)."""
    if topic.startswith("$") and f[:1] in ("+", "#"):
        return False
    fl, tl = f.split("/"), topic.split("/")
    for i, level in enumerate(fl):
        if level == "#":
            return True
        if i >= len(tl) or (level != "+" and level != tl[i]):
            return False
    return len(fl) == len(tl)


class _Node(Generic[K]):
    __slots__ = ("children", "subs")

    def __init__(self) -> None:
        self.children: dict[str, _Node[K]] = {}
        self.subs: dict[K, int] = {}  # subscriber -> granted QoS


class Trie(Generic[K]):
    """Subscriptions by filter; ``match(topic)`` yields (subscriber, qos) pairs, possibly repeated."""

    def __init__(self) -> None:
        self._root: _Node[K] = _Node()
        self.count = 0

    def add(self, f: str, key: K, qos: int) -> None:
        node = self._root
        for level in f.split("/"):
            node = node.children.setdefault(level, _Node())
        if key not in node.subs:
            self.count += 1
        node.subs[key] = qos

    def remove(self, f: str, key: K) -> bool:
        path = [self._root]
        for level in f.split("/"):
            nxt = path[-1].children.get(level)
            if nxt is None:
                return False
            path.append(nxt)
        if path[-1].subs.pop(key, None) is None:
            return False
        self.count -= 1
        levels = f.split("/")
        for i in range(len(levels), 0, -1):  # prune empty branches
            node = path[i]
            if node.subs or node.children:
                break
            del path[i - 1].children[levels[i - 1]]
        return True

    def match(self, topic: str) -> Iterator[tuple[K, int]]:
        levels = topic.split("/")
        dollar = topic.startswith("$")
        stack: list[tuple[_Node[K], int]] = [(self._root, 0)]
        while stack:
            node, i = stack.pop()
            wild_ok = not (dollar and i == 0)
            if wild_ok:
                hash_node = node.children.get("#")
                if hash_node is not None:
                    yield from hash_node.subs.items()
            if i == len(levels):
                yield from node.subs.items()
                continue
            exact = node.children.get(levels[i])
            if exact is not None:
                stack.append((exact, i + 1))
            if wild_ok:
                plus = node.children.get("+")
                if plus is not None:
                    stack.append((plus, i + 1))
