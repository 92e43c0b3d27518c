"""The `callkeeper` command."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from callkeeper import __version__, sounds
from callkeeper.api.client import (
    ApiClientError,
    change_opt_out,
    dial_contact,
    fetch_calls,
    format_calls_table,
)
from callkeeper.ari.errors import AriError
from callkeeper.ari.rest import AriRestClient
from callkeeper.config.json_schema import json_schema
from callkeeper.config.loader import ConfigError, check_config, load_config
from callkeeper.config.model import Config
from callkeeper.logs import setup_logging
from callkeeper.run import event_loop, run_daemon
from callkeeper.web.passwords import hash_password

DEFAULT_CONFIG = "/etc/callkeeper/callkeeper.yaml"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callkeeper", description="No caller to your Asterisk PBX is lost.")
    parser.add_argument("--version", action="version", version=f"callkeeper {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the daemon")
    run.add_argument("--config", "-c", default=DEFAULT_CONFIG, type=Path)
    run.add_argument("--log-json", action="store_true", default=None, help="JSON logs even on a terminal")

    check = commands.add_parser("check-config", help="validate a config file: prints OK or every error")
    check.add_argument("file", type=Path)
    check.add_argument(
        "--asterisk", action="store_true", help="also ask the config's Asterisk for every sound it plays"
    )

    commands.add_parser("schema", help="print the JSON Schema of the config file")
    commands.add_parser("new-token", help="print a new random API token for http.token")

    commands.add_parser(
        "hash-password",
        help="read a password from standard input, print its hash for a user's web_password_hash",
    )

    calls = commands.add_parser("calls", help="list recent calls from a running daemon")
    calls.add_argument("--config", "-c", default=DEFAULT_CONFIG, type=Path)
    calls.add_argument("--limit", type=int, default=20)
    calls.add_argument("--line")
    calls.add_argument("--outcome", choices=["answered", "missed", "abandoned", "ignored"])
    calls.add_argument("--since", help="ISO 8601 time")
    calls.add_argument("--json", action="store_true", help="print the records as JSON")

    dial = commands.add_parser("dial", help="progressive dialer: ring a free user, then call a contact")
    dial.add_argument("--config", "-c", default=DEFAULT_CONFIG, type=Path)
    dial.add_argument("--line", required=True, help="the line the contact is called from")
    dial.add_argument("--to", required=True, help="the contact's E.164 number")
    who = dial.add_mutually_exclusive_group(required=True)
    who.add_argument("--user")
    who.add_argument("--ring-group")

    opt_out = commands.add_parser("opt-out", help="stop (or with --remove, allow again) texts to a number")
    opt_out.add_argument("--config", "-c", default=DEFAULT_CONFIG, type=Path)
    opt_out.add_argument("number", help="E.164 number")
    opt_out.add_argument("--remove", action="store_true", help="allow follow-up texts to the number again")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    match args.command:
        case "check-config":
            return _check_config(args.file, args.asterisk)
        case "schema":
            print(json.dumps(json_schema(), indent=2))
            return 0
        case "new-token":
            print(secrets.token_hex(32))
            return 0
        case "hash-password":
            return _hash_password()
        case "run":
            return _run(args.config, args.log_json)
        case "calls":
            return _calls(args)
        case "dial":
            return _dial(args)
        case "opt-out":
            return _opt_out(args)
    return 2


def _check_config(path: Path, asterisk: bool) -> int:
    problems = check_config(path)
    if not problems and asterisk:
        config = load_config(path)
        try:
            missing = asyncio.run(_missing_sounds(config))
        except (AriError, aiohttp.ClientError, TimeoutError) as error:
            print(f"callkeeper: cannot ask Asterisk at {config.asterisk.url}: {error}", file=sys.stderr)
            return 1
        problems = sounds.problems(config, missing, path)
    if not problems:
        print("OK")
        return 0
    for problem in problems:
        print(problem, file=sys.stderr)
    return 2


MIN_PASSWORD_LENGTH = 8


def _hash_password() -> int:
    """One line from standard input (asked for without echo on a terminal), its scrypt hash on stdout."""
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("callkeeper: the two passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if len(password) < MIN_PASSWORD_LENGTH:
        print(f"callkeeper: a password needs at least {MIN_PASSWORD_LENGTH} characters", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0


async def _missing_sounds(config: Config) -> dict[str, list[str]]:
    async with AriRestClient(config.asterisk) as rest:
        return await sounds.missing_sounds(rest, config)


def _run(config_path: Path, log_json: bool | None) -> int:
    try:
        level = load_config(config_path).log_level
    except (ConfigError, OSError) as error:
        print(f"callkeeper: {error}", file=sys.stderr)
        return 2
    setup_logging(level, json=log_json)
    with asyncio.Runner(loop_factory=event_loop) as runner:
        return runner.run(run_daemon(config_path))


def _api_of(config_path: Path) -> tuple[str, str | None]:
    """The daemon's API address and token, from its config file."""
    http = load_config(config_path).http
    host = f"[{http.host}]" if ":" in http.host else http.host
    return f"http://{host}:{http.port}", http.token.value if http.token else None


def _calls(args: argparse.Namespace) -> int:
    try:
        base_url, token = _api_of(args.config)
        calls = asyncio.run(fetch_calls(base_url, token, args.limit, args.since, args.line, args.outcome))
    except (ConfigError, OSError, ApiClientError) as error:
        print(f"callkeeper: {error}", file=sys.stderr)
        return 2 if isinstance(error, ConfigError | OSError) else 1
    print(json.dumps(calls, indent=2) if args.json else format_calls_table(calls))
    return 0


def _dial(args: argparse.Namespace) -> int:
    try:
        base_url, token = _api_of(args.config)
        call_id = asyncio.run(
            dial_contact(
                base_url, token, contact=args.to, line=args.line, user=args.user, ring_group=args.ring_group
            )
        )
    except (ConfigError, OSError, ApiClientError) as error:
        print(f"callkeeper: {error}", file=sys.stderr)
        return 2 if isinstance(error, ConfigError | OSError) else 1
    print(call_id)
    return 0


def _opt_out(args: argparse.Namespace) -> int:
    try:
        base_url, token = _api_of(args.config)
        state = asyncio.run(change_opt_out(base_url, token, args.number, opted_out=not args.remove))
    except (ConfigError, OSError, ApiClientError) as error:
        print(f"callkeeper: {error}", file=sys.stderr)
        return 2 if isinstance(error, ConfigError | OSError) else 1
    print(json.dumps(state))
    return 0
