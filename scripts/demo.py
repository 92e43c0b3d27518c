"""Places sample calls through the sandbox Asterisk into a running callkeeper and prints the records."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parents[1]
TOKEN = secrets.token_hex(32)  # what `callkeeper new-token` prints
USERS = {  # the example's users, played by the test dialplan
    "alice": "Local/alice-2@user-answer",  # answers after 2 s
    "bob": "Local/bob@user-noanswer",
    "carol": "Local/carol@user-busy",
}
CALLS = [  # (what happens, number dialled, caller script once answered, seconds it rings before giving up)
    ("picks sales in the menu, alice answers", "+12125550100", "wait:3/dtmf:1/wait:6", 30),
    ("hangs up during the welcome", "+12125550100", "hangup", 30),
    (
        "leaves a voicemail from the menu",
        "+12125550100",
        "wait:3/dtmf:9/wait:10/play:hello-world/play:hello-world",
        30,
    ),
    # callkeeper leaves a caller unanswered while phones ring: this one hangs up after 4 s of ringing.
    ("gives up while support rings", "+12125550199", "hangup", 4),
    ("dials a number no line has", "+12125550142", "wait:1", 30),
]


def demo_config(sandbox: dict[str, str], workdir: Path, port: int) -> dict[str, object]:
    config: dict[str, Any] = yaml.safe_load((ROOT / "examples" / "callkeeper.yaml").read_text())
    config["asterisk"].update(url=sandbox["ARI_URL"], username=sandbox["ARI_USER"])
    config["asterisk"]["outbound_dial"] = "Local/{number}@test-outside"
    config["storage"] = f"sqlite:///{workdir / 'callkeeper.db'}"
    config["http"]["listen"] = f"127.0.0.1:{port}"
    for name, endpoint in USERS.items():
        config["users"][name]["endpoint"] = endpoint
    return config


async def place(sandbox: dict[str, str], number: str, script: str, give_up_seconds: int) -> str:
    tag = uuid.uuid4().hex[:12]
    inbound = f"inbound-{tag}"
    auth = "Basic " + base64.b64encode(f"{sandbox['ARI_USER']}:{sandbox['ARI_PASSWORD']}".encode()).decode()
    async with (
        aiohttp.ClientSession(headers={"Authorization": auth}) as session,
        session.post(
            f"{sandbox['ARI_URL']}/ari/channels",
            json={
                "endpoint": f"Local/{number}@callkeeper-inbound",
                "context": "test-caller",
                "extension": "s",
                "callerId": "Demo Caller <+14155550111>",
                "timeout": give_up_seconds,
                "channelId": f"caller-{tag}",
                "otherChannelId": inbound,
                "variables": {"CALLER_SCRIPT": script},
            },
        ) as response,
    ):
        response.raise_for_status()
    return inbound


async def api(port: int, method: str, path: str, body: object = None) -> object:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.request(method, f"http://127.0.0.1:{port}{path}", json=body) as response,
    ):
        return await response.json()


async def run_calls(sandbox: dict[str, str], port: int) -> None:
    await api(port, "PUT", "/api/v1/lines/main/override", {"mode": "open"})
    ids = []
    for what, number, script, give_up_seconds in CALLS:
        print(f"  caller {what} ({number})")
        ids.append(await place(sandbox, number, script, give_up_seconds))
        await asyncio.sleep(0.5)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        records = [await api(port, "GET", f"/api/v1/calls/{call_id}") for call_id in ids]
        if all(isinstance(r, dict) and r.get("outcome") for r in records):
            return
        await asyncio.sleep(0.5)
    print("  (some calls had no verdict after 60 s)")


def print_inbox(inbox: object) -> None:
    items = inbox.get("items", []) if isinstance(inbox, dict) else []
    for item in items:
        print(f"  {item['caller']:<14} {item['line']:<8} {item['reason_text']} (to call back)")
    if not items:
        print("  nothing to call back")


def main() -> int:
    workdir = Path(sys.argv[1])
    sandbox = dict(
        line.split("=", 1) for line in (workdir / "sandbox.env").read_text().splitlines() if "=" in line
    )
    port = 8090
    config_path = workdir / "callkeeper.yaml"
    config_path.write_text(yaml.safe_dump(demo_config(sandbox, workdir, port), sort_keys=False))
    env = {**os.environ, "CALLKEEPER_ARI_PASSWORD": sandbox["ARI_PASSWORD"], "CALLKEEPER_API_TOKEN": TOKEN}
    callkeeper = str(ROOT / ".venv" / "bin" / "callkeeper")
    print(f"callkeeper runs {config_path} (log: {workdir / 'callkeeper.log'})")
    with (workdir / "callkeeper.log").open("w") as log:
        daemon = subprocess.Popen(
            [callkeeper, "run", "--config", str(config_path)], stdout=log, stderr=log, env=env
        )
    try:
        for _ in range(100):
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/readyz")
                request.add_header("Authorization", f"Bearer {TOKEN}")
                with urllib.request.urlopen(request, timeout=1):
                    break
            except OSError:
                if daemon.poll() is not None:
                    print((workdir / "callkeeper.log").read_text(), file=sys.stderr)
                    return 1
                time.sleep(0.2)
        print("sample calls:")
        asyncio.run(run_calls(sandbox, port))
        print()
        subprocess.run(
            [callkeeper, "calls", "--config", str(config_path), "--limit", "10"], env=env, check=True
        )
        print(f"the inbox (the page at http://127.0.0.1:{port}/ shows the same to a signed-in user):")
        print_inbox(asyncio.run(api(port, "GET", "/api/v1/inbox")))
    finally:
        daemon.terminate()
        daemon.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
