"""Bounded waits on clients: each request must arrive whole, headers and body, within the
request timeout (counted from the connection, or from the end of the previous response).

uvicorn bounds only the idle time between two requests (timeout_keep_alive); a client that
sends half its headers, or a body a byte at a time, held a connection open forever (slowloris),
and with it a slot of --max_connections. This is uvicorn's h11 protocol with one timer more; the
timeout comes from the settings `serve` leaves for its workers.
"""

from __future__ import annotations

import functools
import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from gender_cls.serve.settings import ServeSettings


@functools.cache
def request_timeout() -> float:
    return ServeSettings.from_environment().limits.request_timeout


def _timeout_answer(seconds: float) -> bytes:
    """A 408 with predict's one-line JSON error, closing the connection."""
    body = json.dumps({"error": f"request not received whole within {seconds:g} s "
                                "(--request_timeout)"}).encode()  # fmt: skip
    head = (f"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")  # fmt: skip
    return head.encode() + body


class RequestDeadline(H11Protocol):
    """H11Protocol that closes a connection whose request is not received whole in time."""

    _deadline = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):  # received whole, or closing
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()  # the next request on this connection has its own deadline

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(request_timeout(), self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        if self.transport.is_closing():
            return
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(_timeout_answer(request_timeout()))
        self.transport.close()  # connection_lost tells the app, whose receive() ends
