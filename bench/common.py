"""What every benchmark shares: the machine, percentiles, the table, the JSON result, process
CPU and memory from /proc, and the sandbox Asterisk (started on demand, stopped if we started it)."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.conftest import Sandbox

from callkeeper.logs import setup_logging

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
DATA = REPO / "bench" / "data"
SANDBOX_SCRIPT = REPO / "scripts" / "asterisk-sandbox"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def machine() -> dict[str, Any]:
    model = ""
    with Path("/proc/cpuinfo").open() as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_kb = 0
    with Path("/proc/meminfo").open() as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(memory_kb / 2**20, 1),
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return float(ordered[rank])


def production_logs_to_devnull() -> None:
    """The daemon's own log setup (JSON lines, level info), rendered as in production but written
    to /dev/null, for the rest of this process."""
    devnull = Path(os.devnull).open("w")  # noqa: SIM115 - the loggers keep it for the process's life
    with contextlib.redirect_stderr(devnull):
        setup_logging("info", json=True)


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    print(f"\n{title}")
    for index, row in enumerate(cells):
        print(
            "  ".join(
                value.ljust(width) if column == 0 else value.rjust(width)
                for column, (value, width) in enumerate(zip(row, widths, strict=True))
            )
        )
        if index == 0:
            print("  ".join("-" * width for width in widths))


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def batch_parser(
    description: str | None, *, calls: int, rounds: int, rate: float, name: str
) -> argparse.ArgumentParser:
    """The command line of a benchmark of alternating batches (native, then callkeeper)."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=calls, help="calls per batch")
    parser.add_argument(
        "--rounds", type=int, default=rounds, help="native batch then callkeeper batch, this often"
    )
    parser.add_argument("--rate", type=float, default=rate, help="calls placed per second")
    parser.add_argument("--name", default=name, help="bench/results/NAME.json")
    return parser


def write_results(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2, default=str) + "\n")
    print(f"\nwrote {path.relative_to(REPO)}")
    return path


# ------------------------------------------------------------------ /proc


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the whole process (all threads) so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


# ------------------------------------------------------------------ sandbox


@dataclass(frozen=True, slots=True)
class AsteriskSandbox:
    env: dict[str, str]

    @property
    def pid(self) -> int:
        return int(self.env["ASTERISK_PID"])

    @property
    def version(self) -> str:
        return self.env.get("ASTERISK_VERSION", "")

    @property
    def sandbox(self) -> Sandbox:
        """What tests/integration's helpers (place_call, app_events, the daemon) take."""
        return Sandbox.from_env(self.env)


def run_script(script: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """One of the repo's sandbox scripts (`scripts/asterisk-sandbox`, `scripts/postgres-sandbox`)."""
    return subprocess.run(
        [str(script), *args],
        check=False,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )


def _env_lines(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


@contextmanager
def asterisk_sandbox() -> Iterator[AsteriskSandbox]:
    """The sandbox Asterisk with the test dialplan on $ARI_PORT (default 8088): reused if it runs
    (and left running), else started and stopped at the end."""
    running = run_script(SANDBOX_SCRIPT, "env")
    env = _env_lines(running.stdout)
    if running.returncode == 0 and env.get("SANDBOX_WITH_TESTS") == "1":
        yield AsteriskSandbox(env)
        return
    started = run_script(SANDBOX_SCRIPT, "up", "--with-tests")
    if started.returncode != 0:
        raise SystemExit(f"scripts/asterisk-sandbox up failed:\n{started.stderr}")
    try:
        yield AsteriskSandbox(_env_lines(started.stdout))
    finally:
        run_script(SANDBOX_SCRIPT, "down")
