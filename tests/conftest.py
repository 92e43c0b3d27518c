"""The real Asterisk for integration tests: `scripts/asterisk-sandbox`, started once per session.

`sandbox` runs `scripts/asterisk-sandbox up --with-tests` (the shipped configs and dialplan plus the
test dialplan of tests/asterisk/) and `down` at the end of the session. With CALLKEEPER_SANDBOX_REUSE=1
a sandbox that already runs with the test dialplan is used as it is and left running. The script's
environment applies (ARI_PORT, SIP_PORT, ...). It never skips: when Asterisk cannot start, every test
that needs it fails with the script's output. Tests that use `sandbox` are marked `integration`.
"""

from __future__ import annotations

import base64
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "asterisk-sandbox"


def _run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args],
        check=False,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=900,  # the first run builds the rootfs, or waits for another run's lock
    )


def _sandbox_env(*args: str) -> dict[str, str]:
    """Runs the script and returns its KEY=VALUE lines; fails the test with its stderr otherwise."""
    done = _run_script(*args)
    if done.returncode != 0:
        pytest.fail(
            f"scripts/asterisk-sandbox {' '.join(args)} failed (exit {done.returncode}):\n{done.stderr}",
            pytrace=False,
        )
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


@dataclass(frozen=True, slots=True)
class Sandbox:
    """A running sandbox Asterisk. REST is under `{ari_url}/ari`, events at `{ari_url}/ari/events`."""

    ari_url: str
    username: str
    password: str
    app: str
    root: Path
    spool: Path
    log: Path
    cli_command: tuple[str, ...]
    sip_host: str
    """Asterisk's PJSIP transport (UDP), `sip_host:sip_port`."""
    sip_port: int

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Sandbox:
        return cls(
            ari_url=env["ARI_URL"],
            username=env["ARI_USER"],
            password=env["ARI_PASSWORD"],
            app=env["ARI_APP"],
            root=Path(env["ASTERISK_ROOT"]),
            spool=Path(env["ASTERISK_SPOOL"]),
            log=Path(env["ASTERISK_LOG"]),
            cli_command=tuple(shlex.split(env["ASTERISK_CLI"])),
            sip_host=env["SIP_ADDRESS"].rsplit(":", 1)[0],
            sip_port=int(env["SIP_ADDRESS"].rsplit(":", 1)[1]),
        )

    @property
    def authorization(self) -> str:
        """The value of the Authorization header for ARI requests."""
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return f"Basic {token}"

    def cli(self, command: str) -> str:
        """Output of one Asterisk CLI command, e.g. `cli("core show channels")`."""
        done = subprocess.run(
            [*self.cli_command, command],
            check=True,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=30,
        )
        return done.stdout

    def stop(self) -> None:
        """Stops Asterisk (ARI then refuses connections); `start()` brings it back."""
        _sandbox_env("down")

    def start(self) -> None:
        """Starts Asterisk again with the same configs and URL (about a second)."""
        _sandbox_env("up", "--with-tests")

    def crash(self) -> None:
        """Kills Asterisk at once (SIGKILL): no hangups, no goodbye; `start()` brings it back."""
        pid = int(_sandbox_env("env")["ASTERISK_PID"])
        os.kill(pid, signal.SIGKILL)
        while True:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                return
            if state == "Z":
                return
            time.sleep(0.05)

    def restart(self) -> None:
        """A fresh Asterisk: all channels and bridges gone, voicemail and astdb kept."""
        _sandbox_env("up", "--with-tests")


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    if os.environ.get("CALLKEEPER_SANDBOX_REUSE") == "1":
        running = _run_script("env")
        env = dict(line.split("=", 1) for line in running.stdout.splitlines() if "=" in line)
        if running.returncode == 0 and env.get("SANDBOX_WITH_TESTS") == "1":
            yield Sandbox.from_env(env)
            return
    sandbox = Sandbox.from_env(_sandbox_env("up", "--with-tests"))
    yield sandbox
    _sandbox_env("down")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "sandbox" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)
