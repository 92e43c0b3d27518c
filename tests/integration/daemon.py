"""The real callkeeper daemon, started as a process against the sandbox Asterisk."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.conftest import Sandbox
from tests.integration.sandbox_calls import PlacedCall, channels_in_app, list_bridges, place_call, wait_until

TOKEN = "test-token-0123456789abcdef0123456789"
Json = dict[str, Any]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def daemon_config(sandbox: Sandbox, workdir: Path, port: int, body: Json) -> Json:
    return {
        "asterisk": {
            "url": sandbox.ari_url,
            "username": sandbox.username,
            "password": "${CALLKEEPER_ARI_PASSWORD}",
            "app": sandbox.app,
            "outbound_dial": "Local/{number}@test-outside",
            "voicemail_spool": str(sandbox.spool / "voicemail"),
        },
        "storage": f"sqlite:///{workdir / 'callkeeper.db'}",
        "http": {"listen": f"127.0.0.1:{port}", "token": "${CALLKEEPER_API_TOKEN}"},
        "shutdown_grace_seconds": 10,
        "log_level": "debug",
        **body,
    }


@dataclass
class RunningDaemon:
    sandbox: Sandbox
    workdir: Path
    config_path: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return (self.workdir / "daemon.log").read_text(errors="replace")

    def start(self) -> None:
        env = {
            **os.environ,
            "CALLKEEPER_ARI_PASSWORD": self.sandbox.password,
            "CALLKEEPER_API_TOKEN": TOKEN,
        }
        log = (self.workdir / "daemon.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "callkeeper", "run", "--config", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"callkeeper exited with {self.process.returncode}:\n{self.log}", pytrace=False)
            if self.ready():
                return
            time.sleep(0.1)
        pytest.fail(f"callkeeper did not become ready in 20 s:\n{self.log}", pytrace=False)

    def ready(self) -> bool:
        request = urllib.request.Request(
            f"{self.base_url}/readyz", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def send(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 20) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"callkeeper did not stop within {timeout} s:\n{self.log}", pytrace=False)

    async def api(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with (
            aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=10)) as session,
            session.request(method, f"{self.base_url}{path}", **kwargs) as response,
        ):
            return response.status, await response.json(content_type=None)

    async def call(self, call_id: str) -> Json | None:
        status, body = await self.api("GET", f"/api/v1/calls/{call_id}")
        return body if status == 200 else None

    async def verdict(self, call: PlacedCall | str, within: float = 60) -> Json:
        """The call's record once it has its verdict."""
        call_id = call if isinstance(call, str) else call.inbound
        found: Json = {}

        async def decided() -> bool:
            record = await self.call(call_id)
            if record and record["outcome"]:
                found.update(record)
                return True
            return False

        await wait_until(decided, within=within, what=f"verdict of {call_id}")
        return found

    async def place(
        self, dialled: str, script: str | None = None, caller_id: str = "+14155550111"
    ) -> PlacedCall:
        return await place_call(self.sandbox, dialled, caller_id, script)

    async def assert_nothing_left(self) -> None:
        """No channel in our app and no bridge of ours stays behind in Asterisk."""

        async def clean() -> bool:
            channels = await channels_in_app(self.sandbox, self.sandbox.app)
            bridges = [b for b in await list_bridges(self.sandbox) if str(b["id"]).startswith("callkeeper-")]
            return not channels and not bridges

        await wait_until(clean, within=15, what="no channels or bridges of callkeeper left")


@contextmanager
def running_daemon(sandbox: Sandbox, workdir: Path, body: Json) -> Iterator[RunningDaemon]:
    port = free_port()
    config_path = workdir / "callkeeper.yaml"
    config_path.write_text(yaml.safe_dump(daemon_config(sandbox, workdir, port, body), sort_keys=False))
    daemon = RunningDaemon(sandbox, workdir, config_path, port)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()
