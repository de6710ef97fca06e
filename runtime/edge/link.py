"""``Hub``: what the edge's components need from the cloud link (runtime/edge/edgehub.EdgeHub provides it).

One protocol for all of them — node status, the agent, the cache's reference lookups and the device
uplink — so that a test can hand any of them the real EdgeHub (offline or connected), and a change to
the link's surface shows up in one place.
"""

from __future__ import annotations

from typing import Any, Protocol

from runtime.protocol import Message


class Hub(Protocol):
    @property
    def connected(self) -> bool: ...

    def status(self) -> dict[str, Any]: ...

    async def send(self, msg: Message) -> None: ...

    async def request(self, msg: Message, timeout: float = 30.0) -> Message: ...  # noqa: ASYNC109
