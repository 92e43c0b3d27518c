"""The sd_notify protocol, without libsystemd: readiness, status text, stopping and the watchdog.

Under systemd (`Type=notify`) the service manager passes `NOTIFY_SOCKET` (a file system path or an
abstract socket written with a leading `@`) and, with `WatchdogSec=`, `WATCHDOG_USEC` (and
`WATCHDOG_PID`). Everywhere else the environment has none of them and every call here does nothing.
Notification is a courtesy to the service manager: nothing here ever raises into the daemon.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Mapping

import structlog

log = structlog.get_logger(__name__)


def _socket_address(value: str) -> str | None:
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    if value:
        log.debug("sd_notify_socket_unsupported", notify_socket=value)
    return None


def _watchdog_seconds(environ: Mapping[str, str]) -> float | None:
    """The watchdog interval systemd expects pings within, if it watches this process."""
    usec, pid = environ.get("WATCHDOG_USEC", ""), environ.get("WATCHDOG_PID", "")
    try:
        interval = int(usec) if usec else 0
        if pid and int(pid) != os.getpid():
            return None  # meant for another process (we were started by the watched one)
    except ValueError:
        log.debug("sd_watchdog_environment_invalid", watchdog_usec=usec, watchdog_pid=pid)
        return None
    return interval / 1_000_000 if interval > 0 else None


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = _socket_address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_seconds = _watchdog_seconds(env) if self.address is not None else None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def ready(self, status: str) -> bool:
        return self._send("READY=1", f"STATUS={_one_line(status)}")

    def status(self, text: str) -> bool:
        return self._send(f"STATUS={_one_line(text)}")

    def stopping(self) -> bool:
        return self._send("STOPPING=1")

    def watchdog(self) -> bool:
        return self.watchdog_seconds is not None and self._send("WATCHDOG=1")

    def _send(self, *assignments: str) -> bool:
        """One datagram; never blocks the event loop (a full queue drops the message)."""
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.setblocking(False)
                sock.sendto("\n".join(assignments).encode(), self.address)
        except OSError as error:
            log.debug("sd_notify_failed", message=assignments[0], error=str(error))
            return False
        return True


def _one_line(text: str) -> str:
    return " ".join(text.splitlines())


async def watchdog_loop(notifier: Notifier, is_healthy: Callable[[], bool]) -> None:
    """Pings the watchdog at half its interval while `is_healthy()`; returns at once without one.

    The pings come from the event loop itself, so a blocked loop misses them and systemd restarts
    the daemon. Cancel the task to stop.
    """
    interval = notifier.watchdog_seconds
    if interval is None:
        return
    while True:
        try:
            healthy = is_healthy()
        except Exception as error:
            log.debug("sd_watchdog_health_check_failed", error=repr(error))
            healthy = False
        if healthy:
            notifier.watchdog()
        else:
            log.debug("sd_watchdog_withheld")
        await asyncio.sleep(interval / 2)
