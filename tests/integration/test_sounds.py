"""Every sound a config plays is asked of Asterisk: at start, after SIGHUP, and by
`callkeeper check-config --asterisk`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import Sandbox
from tests.integration.daemon import RunningDaemon, daemon_config, running_daemon
from tests.integration.sandbox_calls import wait_until

ROOT = Path(__file__).resolve().parents[2]


def body(welcome: str, language: str | None = None) -> dict[str, Any]:
    line: dict[str, Any] = {"numbers": ["+15550005001"], "route": "dead_end", "welcome": welcome}
    if language:
        line["language"] = language
    return {"lines": {"main": line}}


async def missing(daemon: RunningDaemon) -> dict[str, list[str]]:
    status, ready = await daemon.api("GET", "/readyz")
    assert status == 200, ready
    return dict(ready["detail"]["missing_sounds"])


async def test_missing_sounds_are_named_at_start_and_after_a_reload(sandbox: Sandbox, tmp_path: Path) -> None:
    with running_daemon(sandbox, tmp_path, body("sound:callkeeper/nothing-here")) as daemon:
        assert await missing(daemon) == {"callkeeper/nothing-here": ["lines.main.welcome"]}
        assert '"sound_missing"' in daemon.log
        config = daemon_config(sandbox, tmp_path, daemon.port, body("sound:hello-world"))
        daemon.config_path.write_text(yaml.safe_dump(config))
        daemon.send(signal.SIGHUP)

        async def all_there() -> bool:
            return await missing(daemon) == {}

        await wait_until(all_there, within=10, what="no missing sounds after the reload")
        # Asterisk has hello-world in English only.
        config = daemon_config(sandbox, tmp_path, daemon.port, body("sound:hello-world", language="fr"))
        daemon.config_path.write_text(yaml.safe_dump(config))
        daemon.send(signal.SIGHUP)

        async def french_missing() -> bool:
            return await missing(daemon) == {"hello-world": ["lines.main.welcome"]}

        await wait_until(french_missing, within=10, what="hello-world missing in French")


def test_check_config_asks_asterisk(sandbox: Sandbox, tmp_path: Path) -> None:
    config = daemon_config(sandbox, tmp_path, 8999, body("sound:callkeeper/nothing-here"))
    path = tmp_path / "callkeeper.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "CALLKEEPER_ARI_PASSWORD": sandbox.password, "CALLKEEPER_API_TOKEN": "x"}

    def check(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "callkeeper", "check-config", *args, str(path)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )

    assert check().stdout == "OK\n"
    found = check("--asterisk")
    assert found.returncode == 2
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "nothing-here" in text)
    assert found.stderr.startswith(f"{path}:{line}: lines.main.welcome: sound 'callkeeper/nothing-here'")

    example = yaml.safe_load((ROOT / "examples" / "callkeeper.yaml").read_text())
    example["asterisk"]["url"] = sandbox.ari_url
    example["asterisk"]["username"] = sandbox.username
    path.write_text(yaml.safe_dump(example))
    assert check("--asterisk").stdout == "OK\n", "the example plays only sounds Asterisk ships"
