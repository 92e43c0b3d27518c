"""Asterisk goes away under a running daemon and comes back: the daemon waits without burning
CPU, reconnects by itself within seconds, and takes calls again."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.conftest import Sandbox
from tests.integration.daemon import TOKEN, daemon_config, free_port, running_daemon
from tests.integration.sandbox_calls import wait_until

CONFIG = {
    "users": {"alice": {"endpoint": "Local/alice-1@user-answer"}},
    "ring_groups": {"sales": {"members": ["alice"]}},
    "lines": {"main": {"numbers": ["+15550002001"], "route": "ring_group:sales"}},
}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def test_reconnects_after_asterisk_restart(sandbox: Sandbox, tmp_path: Path) -> None:
    with running_daemon(sandbox, tmp_path, CONFIG) as daemon:
        assert daemon.process is not None
        before = await daemon.verdict(await daemon.place("+15550002001", "wait:3"))
        assert before["outcome"] == "answered"

        sandbox.stop()
        try:
            await wait_until(lambda: not daemon.ready(), within=10, what="daemon notices Asterisk is gone")
            cpu_before = cpu_seconds(daemon.process.pid)
            await asyncio.sleep(5)
            cpu_while_down = cpu_seconds(daemon.process.pid) - cpu_before
            assert daemon.process.poll() is None, daemon.log
        finally:
            sandbox.start()
        back = time.monotonic()
        await wait_until(daemon.ready, within=15, what="daemon ready again")
        reconnect_seconds = time.monotonic() - back

        assert cpu_while_down < 0.5, f"{cpu_while_down:.2f} CPU s in 5 s while Asterisk was down"
        assert reconnect_seconds < 12
        after = await daemon.verdict(await daemon.place("+15550002001", "wait:3"))
        assert after["outcome"] == "answered"
        assert "ari_auth" not in daemon.log


def test_wrong_credentials_exit_non_zero(sandbox: Sandbox, tmp_path: Path) -> None:
    password = "wrong-password"
    config = daemon_config(sandbox, tmp_path, free_port(), CONFIG)
    config["asterisk"]["password"] = password
    path = tmp_path / "callkeeper.yaml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run(
        [sys.executable, "-m", "callkeeper", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "CALLKEEPER_API_TOKEN": TOKEN},
    )
    assert done.returncode != 0
    assert "ARI rejected user" in done.stderr
    assert password not in done.stderr
