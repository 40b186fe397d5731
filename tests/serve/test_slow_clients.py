"""Slow and too many clients against the real server, over real sockets: a request that does not
arrive whole in time is answered 408 and closed; connections past the cap are answered 503; the
server serves on."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

pytest.importorskip("fastapi")
from tests.helpers import png_bytes, post_image, serving  # noqa: E402

TIMEOUT = 1  # --request_timeout of the server under test


@pytest.fixture(scope="module")
def strict_server(exported_run):
    with serving(exported_run, "--request_timeout", str(TIMEOUT), "--max_connections", "4") as (
        port,
        url,
        process,
    ):
        yield port, url, process


def connect(port: int, sent: bytes) -> socket.socket:
    client = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT * 5)
    client.sendall(sent)
    return client


def answer_and_close(client: socket.socket) -> tuple[bytes, float]:
    """What the server sends until it closes the connection, and after how many seconds."""
    began, received = time.monotonic(), b""
    while chunk := client.recv(4096):
        received += chunk
    client.close()
    return received, time.monotonic() - began


@pytest.mark.slow
@pytest.mark.parametrize("sent", [
    b"",  # connects and says nothing
    b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Ty",  # headers that never end
    b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + png_bytes()[:100],
])  # fmt: skip
def test_a_request_that_never_arrives_whole_is_answered_408_and_closed(strict_server, sent):
    port, url, _ = strict_server
    received, seconds = answer_and_close(connect(port, sent))
    assert received.startswith(b"HTTP/1.1 408 ") and b"(--request_timeout)" in received
    assert TIMEOUT - 0.5 < seconds < TIMEOUT + 3
    assert post_image(url, png_bytes())  # and the server answers the next client


@pytest.mark.slow
def test_connections_past_the_cap_are_answered_503_until_the_slow_ones_time_out(strict_server):
    port, url, process = strict_server
    idle = [connect(port, b"GET /health HTTP/1.1\r\nHost: x\r\n") for _ in range(4)]
    time.sleep(0.3)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{url}/health", timeout=10)
    assert refused.value.code == 503
    for client in idle:
        assert answer_and_close(client)[0].startswith(b"HTTP/1.1 408 ")
    assert urllib.request.urlopen(f"{url}/health", timeout=10).status == 200
    assert process.poll() is None


@pytest.mark.slow
def test_a_taken_port_is_one_line_and_exit_2(exported_run):
    """uvicorn exited 3 after its own log lines; the port is checked before any worker starts."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "gender_cls", "serve", "--model_path",
                              str(exported_run), "--port", str(port)],
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines()[-1] == (
        f"error: cannot listen on 127.0.0.1:{port} (Address already in use); pass another "
        "--port, or stop the server that has it"
    )
