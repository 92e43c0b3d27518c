"""sd_notify against a real AF_UNIX datagram socket standing in for systemd."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from callkeeper.service.systemd import Notifier, watchdog_loop


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """The service manager's end: a bound socket and its NOTIFY_SOCKET value (a path)."""
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.setblocking(False)
        yield sock, path


def received(sock: socket.socket) -> list[bytes]:
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096))
        except BlockingIOError:
            return messages


def test_ready_status_stopping_and_watchdog_arrive_exactly(manager: tuple[socket.socket, str]) -> None:
    sock, path = manager
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000"})

    assert notifier.ready("connected to Asterisk, 0 calls in progress")
    assert notifier.status("reconnecting to Asterisk")
    assert notifier.watchdog()
    assert notifier.stopping()

    assert received(sock) == [
        b"READY=1\nSTATUS=connected to Asterisk, 0 calls in progress",
        b"STATUS=reconnecting to Asterisk",
        b"WATCHDOG=1",
        b"STOPPING=1",
    ]
    assert notifier.watchdog_seconds == 30.0


def test_an_abstract_socket_is_written_with_an_at_sign() -> None:
    name = f"callkeeper-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.setblocking(False)
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})

        assert notifier.ready("up")
        assert notifier.stopping()

        assert received(sock) == [b"READY=1\nSTATUS=up", b"STOPPING=1"]


def test_status_text_stays_on_one_line(manager: tuple[socket.socket, str]) -> None:
    sock, path = manager

    Notifier({"NOTIFY_SOCKET": path}).status("ARI down\nREADY=1")

    assert received(sock) == [b"STATUS=ARI down READY=1"]


def test_nothing_is_sent_outside_systemd(
    manager: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, _ = manager
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    notifier = Notifier()

    assert not notifier.enabled
    assert notifier.watchdog_seconds is None
    assert not notifier.ready("up")
    assert not notifier.status("up")
    assert not notifier.watchdog()
    assert not notifier.stopping()
    assert received(sock) == []


def test_the_environment_is_read_by_default(
    manager: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = manager
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))

    notifier = Notifier()

    assert notifier.watchdog_seconds == 2.0
    assert notifier.watchdog()
    assert received(sock) == [b"WATCHDOG=1"]


@pytest.mark.parametrize(
    "environ",
    [
        {"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"},  # another process is watched
        {"WATCHDOG_USEC": "0"},
        {"WATCHDOG_USEC": "soon"},
        {"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "me"},
        {},
    ],
)
async def test_no_watchdog_without_one_meant_for_this_process(
    manager: tuple[socket.socket, str], environ: dict[str, str]
) -> None:
    sock, path = manager
    notifier = Notifier({"NOTIFY_SOCKET": path, **environ})

    assert notifier.watchdog_seconds is None
    assert not notifier.watchdog()
    await asyncio.wait_for(watchdog_loop(notifier, lambda: True), 1.0)  # returns at once
    assert notifier.ready("up")  # the rest of the protocol still works
    assert received(sock) == [b"READY=1\nSTATUS=up"]


@pytest.mark.parametrize(
    "notify_socket", ["/nonexistent/callkeeper/notify", "@callkeeper-nobody-listens", "vsock:2:1234", "@"]
)
def test_a_socket_nobody_listens_on_never_raises(notify_socket: str) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": notify_socket, "WATCHDOG_USEC": "1000000"})

    assert not notifier.ready("up")
    assert not notifier.watchdog()
    assert not notifier.stopping()


def watched(sock: socket.socket) -> Notifier:
    """A notifier whose watchdog interval is 0.1 s: pings every 0.05 s."""
    return Notifier({"NOTIFY_SOCKET": sock.getsockname(), "WATCHDOG_USEC": "100000"})


async def ping_times(
    sock: socket.socket, seconds: float, is_healthy: Callable[[], bool]
) -> tuple[list[float], float]:
    """Runs the watchdog loop for about `seconds`: when (time.monotonic()) its pings arrived, and
    for how long it really ran."""
    loop = asyncio.get_running_loop()
    arrivals: list[float] = []

    async def listen() -> None:
        while True:
            assert await loop.sock_recv(sock, 4096) == b"WATCHDOG=1"
            arrivals.append(time.monotonic())

    listener = asyncio.create_task(listen())
    start = time.monotonic()
    pinging = asyncio.create_task(watchdog_loop(watched(sock), is_healthy))
    await asyncio.sleep(seconds)
    pinging.cancel()
    ran_for = time.monotonic() - start
    await asyncio.sleep(0.01)
    listener.cancel()
    await asyncio.gather(pinging, listener, return_exceptions=True)
    return arrivals, ran_for


async def test_the_watchdog_is_pinged_at_half_its_interval(manager: tuple[socket.socket, str]) -> None:
    sock, _ = manager
    start = time.monotonic()

    arrivals, ran_for = await ping_times(sock, 0.42, lambda: True)

    # Arrival times jitter with the scheduler; the count and the typical gap do not.
    assert arrivals[0] - start < 0.05  # the first ping goes out at once
    assert 4 <= len(arrivals) <= ran_for / 0.05 + 1
    assert 0.045 <= statistics.median(b - a for a, b in itertools.pairwise(arrivals)) < 0.1


async def test_no_pings_while_unhealthy(manager: tuple[socket.socket, str]) -> None:
    sock, _ = manager
    withheld, _ = await ping_times(sock, 0.15, lambda: False)
    assert withheld == []

    healthy_from = time.monotonic() + 0.1
    arrivals, _ = await ping_times(sock, 0.3, lambda: time.monotonic() >= healthy_from)

    assert arrivals
    assert all(arrival >= healthy_from for arrival in arrivals)


async def test_a_failing_health_check_withholds_the_ping_and_the_loop_goes_on(
    manager: tuple[socket.socket, str],
) -> None:
    sock, _ = manager
    checks = 0

    def flaky() -> bool:
        nonlocal checks
        checks += 1
        if checks == 1:
            raise RuntimeError("store gone")
        return True

    arrivals, _ = await ping_times(sock, 0.2, flaky)

    assert checks >= 3
    assert len(arrivals) == checks - 1


def a_handler_that_blocks_the_loop(seconds: float) -> None:
    time.sleep(seconds)


async def test_a_blocked_event_loop_stops_the_pings(manager: tuple[socket.socket, str]) -> None:
    sock, _ = manager
    pinging = asyncio.create_task(watchdog_loop(watched(sock), lambda: True))
    await asyncio.sleep(0.12)
    assert received(sock)

    a_handler_that_blocks_the_loop(0.3)
    during = received(sock)
    await asyncio.sleep(0.12)
    after = received(sock)
    pinging.cancel()
    await asyncio.gather(pinging, return_exceptions=True)

    assert during == []
    assert after  # pings resume with the loop
