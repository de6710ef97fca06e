"""runtime/streams: the protocols of kubectl exec/attach/port-forward, server side, shared by the cloud's
stream endpoint and anyone else that terminates them (no imports from runtime/cloud, edge, apiserver).

    spdy.py           SPDY/3.1 without I/O: frames ⇄ bytes, zlib header blocks (SPDY/3 dictionary),
                      flow-control windows; SpdyError for every protocol violation
    transport.py      byte pipes under SPDY: Transport, StreamTransport (TCP), WebSocketTransport (SPDY
                      in binary WebSocket messages); WebSocketChannel (a server WebSocket, sans-I/O)
    connection.py     SpdyConnection over a Transport: peer-opened streams, read/write/half-close/reset,
                      PING, GOAWAY, window backpressure
    upgrade.py        read_request (h11) and the 101 answers: SPDY/3.1 with X-Stream-Protocol-Version,
                      WebSocket (websockets' sans-I/O handshake), or a non-101 refusal
    remotecommand.py  accept_command → CommandSession (exec/attach over SPDY v2-v4 or WebSocket v4/v5)
    portforward.py    accept_portforward → PortForwardSession → PortConnection per (port, requestID)
    client.py         a small SPDY client (tests, benchmarks)

The flow: a connection arrives → read_request → the caller checks path and authorisation → accept_command
or accept_portforward upgrades it (SPDY, or WebSocket when the client asks and it is allowed) → the caller
serves the session through its interface only: stdin_chunks/resizes/write_stdout/write_stderr/finish,
or connections() with read/write/close/fail per forwarded connection.
"""

from runtime.streams.connection import SpdyConnection, SpdyStream, StreamReset
from runtime.streams.portforward import PortConnection, PortForwardSession, accept_portforward
from runtime.streams.remotecommand import CommandSession, TerminalSize, accept_command
from runtime.streams.spdy import SpdyError
from runtime.streams.transport import StreamTransport, Transport
from runtime.streams.upgrade import StreamRequest, UpgradeError, read_request, refuse, write_response

__all__ = [
    "CommandSession",
    "PortConnection",
    "PortForwardSession",
    "SpdyConnection",
    "SpdyError",
    "SpdyStream",
    "StreamRequest",
    "StreamReset",
    "StreamTransport",
    "TerminalSize",
    "Transport",
    "UpgradeError",
    "accept_command",
    "accept_portforward",
    "read_request",
    "refuse",
    "write_response",
]
