"""The layering the code relies on: call features never import each other, the pure call logic
does no I/O, and the shell does not reach into the HTTP API."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "daemon" / "callkeeper"
FEATURES = {"ivr", "ring_group", "queue", "personal_line", "voicemail", "dialer", "adoption"}


def imported(path: Path) -> set[str]:
    """The modules a file imports (`from a import b` counts as `a` and `a.b`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_call_features_never_import_each_other() -> None:
    for feature in sorted(FEATURES):
        others = {f"callkeeper.calls.{other}" for other in FEATURES - {feature}}
        assert not imported(PACKAGE / "calls" / f"{feature}.py") & others, feature


def test_the_call_logic_does_no_io_and_knows_no_shell() -> None:
    for path in sorted((PACKAGE / "calls").glob("*.py")):
        names = imported(path)
        assert not any(
            n.startswith(("callkeeper.service", "callkeeper.api", "callkeeper.ari")) for n in names
        )
        assert not names & {"asyncio", "aiohttp", "websockets", "socket", "time"}, path.name


def test_the_shell_does_not_import_the_http_api() -> None:
    for path in sorted((PACKAGE / "service").glob("*.py")):
        assert not any(n.startswith("callkeeper.api") for n in imported(path)), path.name
