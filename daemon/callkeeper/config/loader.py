"""Reads callkeeper.yaml into the frozen `config.model.Config`, or fails with every problem at once.

The YAML is composed into a node tree (never constructed), so every value keeps its line. First the
tree is checked against the shape in `config.schema` (keys, types, formats, `${NAME}` and
`<key>_file` secrets); then each section is built into the model and checked for meaning (time
ranges, time zones, numbers, templates); last come the cross-references (destinations, ring group
members, shared numbers, line loops, dialing out, the API token). Problems are collected, never
raised one by one.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from typing import TypeAlias
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from callkeeper.config import schema
from callkeeper.config.model import (
    TEMPLATE_VARIABLES,
    AsteriskConfig,
    BusinessHours,
    Config,
    Destination,
    DestinationKind,
    FollowupText,
    HttpConfig,
    Ivr,
    Line,
    MissedCalls,
    QueueConfig,
    QuietHours,
    RingGroup,
    Secret,
    SmsProvider,
    SmsProviderType,
    Strategy,
    TextLimits,
    TimeRange,
    UnknownNumber,
    UnknownNumberAction,
    User,
    Webhook,
)

__all__ = ["ConfigError", "ConfigProblem", "check_config", "load_config", "load_config_text"]

Data: TypeAlias = "str | int | float | bool | list[Data] | dict[str, Data]"
Section: TypeAlias = "dict[str, Data]"

_TAG = "tag:yaml.org,2002:"
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_YAML_LOADER = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader  # same nodes, faster
_SCALARS = SafeConstructor()
_WHOLE_DAY = TimeRange(time(0, 0), time.max)
_MISSED_CALL_ACTIONS = (DestinationKind.VOICEMAIL, DestinationKind.LINE, DestinationKind.EXTERNAL)


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with the file: where (a dotted YAML path and its line) and what."""

    path: str
    line: int
    message: str

    def format(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(Exception):
    """The file is not a valid configuration; `str()` lists every problem, one per line."""

    def __init__(self, problems: list[ConfigProblem], source: str = "<config>") -> None:
        unique = list(dict.fromkeys(problems))
        self.problems = sorted(unique, key=lambda problem: problem.line)
        self.source = source
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [problem.format(self.source) for problem in self.problems]


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
    """Loads the file at `path`; `${NAME}` comes from `env` (default: the process environment) and
    relative `<key>_file` paths are relative to the file's directory."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([ConfigProblem("", 0, f"cannot read the file: {error}")], str(file)) from None
    return load_config_text(text, str(file), os.environ if env is None else env, base_dir=file.parent)


def load_config_text(
    text: str, source_name: str, env: Mapping[str, str], *, base_dir: Path | None = None
) -> Config:
    try:
        root = yaml.compose(text, Loader=_YAML_LOADER)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        message = " ".join(part for part in (error.context, error.problem) if part)
        problem = ConfigProblem("", mark.line + 1 if mark else 0, f"not valid YAML: {message}")
        raise ConfigError([problem], source_name) from None
    except yaml.YAMLError as error:
        raise ConfigError([ConfigProblem("", 0, f"not valid YAML: {error}")], source_name) from None
    if root is None:
        raise ConfigError([ConfigProblem("", 1, "the file is empty")], source_name)
    loader = _Loader(env, base_dir or Path.cwd())
    data = loader.check_obj(root, schema.FILE, "")
    config = loader.build(data) if data is not None else None
    if loader.problems or config is None:
        raise ConfigError(loader.problems, source_name)
    return config


def check_config(path: str | os.PathLike[str]) -> list[str]:
    """`callkeeper check-config FILE`: every problem as `FILE:LINE: PATH: message`, empty if valid."""
    try:
        load_config(path)
    except ConfigError as error:
        return error.lines()
    return []


def _join(path: str, key: str | int) -> str:
    return f"{path}.{key}" if path else str(key)


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _TAG + "null"


def _describe(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    kind = node.tag.removeprefix(_TAG)
    if kind == "null":
        return "nothing"
    if kind in ("int", "float"):
        return f"the number {node.value}"
    if kind == "bool":
        return str(node.value)
    return f"{node.value!r}"


def _did_you_mean(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _known(names: Iterable[str]) -> str:
    listed = ", ".join(sorted(names))
    return f"known: {listed}" if listed else "none are defined"


def _parse_phone(number: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None


def _valid_e164(number: str) -> bool:
    parsed = _parse_phone(number)
    return parsed is not None and bool(phonenumbers.is_valid_number(parsed))


def _region(number: str) -> str | None:
    parsed = _parse_phone(number)
    region = phonenumbers.region_code_for_number(parsed) if parsed is not None else None
    return region if region in phonenumbers.SUPPORTED_REGIONS else None


def _parse_time(text: str) -> time:
    if text == "24:00":
        return time.max
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


# Getters for built sections. The shape check guarantees the type of every present value and fills
# every default, so a defaulted key is always there; only required or default-less keys may be absent.


def _text(section: Section, key: str) -> str:
    value = section[key]
    assert isinstance(value, str), key
    return value


def _int(section: Section, key: str) -> int:
    value = section[key]
    assert isinstance(value, int), key
    return value


def _flag(section: Section, key: str) -> bool:
    value = section[key]
    assert isinstance(value, bool), key
    return value


def _seconds(section: Section, key: str) -> float:
    value = section[key]
    assert isinstance(value, int | float), key
    return float(value)


def _texts(section: Section, key: str) -> list[str]:
    value = section.get(key, [])
    assert isinstance(value, list), key
    return [item for item in value if isinstance(item, str)]


def _list(section: Section, key: str) -> list[Data]:
    value = section.get(key, [])
    assert isinstance(value, list), key
    return value


def _section(section: Section, key: str) -> Section:
    value = section.get(key, {})
    assert isinstance(value, dict), key
    return value


def _opt_text(section: Section, key: str) -> str | None:
    value = section.get(key)
    return value if isinstance(value, str) else None


def _opt_int(section: Section, key: str) -> int | None:
    value = section.get(key)
    return value if isinstance(value, int) else None


def _opt_secret(section: Section, key: str) -> Secret | None:
    value = section.get(key)
    return value if isinstance(value, Secret) else None


def _opt_section(section: Section, key: str) -> Section | None:
    value = section.get(key)
    return value if isinstance(value, dict) else None


class _Loader:
    def __init__(self, env: Mapping[str, str], base_dir: Path) -> None:
        self.env = env
        self.base_dir = base_dir
        self.problems: list[ConfigProblem] = []
        self.lines: dict[str, int] = {"": 1}
        self.destinations: list[tuple[str, Destination]] = []
        self.dial_outs: list[tuple[str, str]] = []
        self.names: dict[str, set[str]] = {}

    def problem(self, path: str, message: str, line: int | None = None) -> None:
        self.problems.append(ConfigProblem(path, self.line_of(path) if line is None else line, message))

    def line_of(self, path: str) -> int:
        while path not in self.lines:
            path = path.rpartition(".")[0]
        return self.lines[path]

    # -- the shape ---------------------------------------------------------------------------------

    def check(self, node: Node, shape: schema.Shape, path: str) -> Data | None:
        """The value of `node` if it has `shape`, else None (with the problems recorded)."""
        match shape:
            case schema.Text():
                return self.check_text(node, shape, path)
            case schema.Integer(minimum=minimum):
                if not (isinstance(node, ScalarNode) and node.tag == _TAG + "int"):
                    self.problem(path, f"expected an integer, got {_describe(node)}")
                    return None
                number = _SCALARS.construct_yaml_int(node)
                if minimum is not None and number < minimum:
                    self.problem(path, f"must be at least {minimum}, not {number}")
                    return None
                return number
            case schema.Number():
                if not (isinstance(node, ScalarNode) and node.tag in (_TAG + "int", _TAG + "float")):
                    self.problem(path, f"expected a number of seconds, got {_describe(node)}")
                    return None
                if node.tag == _TAG + "int":
                    seconds = float(_SCALARS.construct_yaml_int(node))
                else:
                    seconds = _SCALARS.construct_yaml_float(node)
                if not 0 < seconds < math.inf:
                    self.problem(path, f"must be a positive number of seconds, not {node.value}")
                    return None
                return seconds
            case schema.Flag():
                if not (isinstance(node, ScalarNode) and node.tag == _TAG + "bool"):
                    self.problem(path, f"expected true or false, got {_describe(node)}")
                    return None
                return _SCALARS.construct_yaml_bool(node)
            case schema.ListOf():
                return self.check_list(node, shape, path)
            case schema.MapOf():
                return self.check_map(node, shape, path)
            case schema.Obj():
                return self.check_obj(node, shape, path)
            case schema.Tagged():
                return self.check_tagged(node, shape, path)
        raise AssertionError(shape)

    def check_text(self, node: Node, shape: schema.Text, path: str) -> str | None:
        expect = shape.expect or "a string"
        if not isinstance(node, ScalarNode) or _is_null(node):
            self.problem(path, f"expected {expect}, got {_describe(node)}")
            return None
        value = self.substitute(node.value, path)
        if value is None:
            return None
        if not value:
            self.problem(path, "must not be empty")
            return None
        # What came from the environment is not repeated: it may be a credential.
        shown = repr(value) if value == node.value else f"{node.value!r} (substituted)"
        if shape.choices and value not in shape.choices:
            choices = ", ".join(shape.choices)
            self.problem(path, f"must be one of {choices}, not {shown}{_did_you_mean(value, shape.choices)}")
            return None
        if shape.pattern is not None and not re.fullmatch(shape.pattern, value):
            self.problem(path, f"expected {expect}, got {shown}")
            return None
        return Secret(value) if shape.secret else value

    def substitute(self, raw: str, path: str) -> str | None:
        """`raw` with each `${NAME}` replaced from the environment."""
        missing: list[str] = []

        def lookup(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.env:
                missing.append(name)
                return ""
            return self.env[name]

        value = _ENV_REFERENCE.sub(lookup, raw)
        for name in missing:
            self.problem(path, f"environment variable {name} is not set")
        malformed = "${" in _ENV_REFERENCE.sub("", raw)
        if malformed:
            self.problem(path, "malformed ${...}: write ${NAME} with letters, digits and _")
        return None if missing or malformed else value

    def check_secret_file(self, node: Node, path: str) -> Secret | None:
        name = self.check_text(node, schema.Text(expect="a file path"), path)
        if name is None:
            return None
        file = self.base_dir / name
        try:
            content = file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            self.problem(path, f"cannot read {file}: {getattr(error, 'strerror', None) or error}")
            return None
        if not content:
            self.problem(path, f"{file} is empty")
            return None
        return Secret(content)

    def check_list(self, node: Node, shape: schema.ListOf, path: str) -> list[Data] | None:
        """All items, or None if any is wrong (so that item indexes in later messages stay right)."""
        if not isinstance(node, SequenceNode):
            self.problem(path, f"expected a list, got {_describe(node)}")
            return None
        if len(node.value) < shape.min_items:
            self.problem(path, "must not be empty")
            return None
        items: list[Data] = []
        for index, item_node in enumerate(node.value):
            item_path = _join(path, index)
            self.lines[item_path] = _line(item_node)
            item = self.check(item_node, shape.item, item_path)
            if item is not None:
                items.append(item)
        return items if len(items) == len(node.value) else None

    def check_map(self, node: Node, shape: schema.MapOf, path: str) -> Section | None:
        pairs = self.pairs(node, path)
        if pairs is None:
            return None
        if len(pairs) < shape.min_items:
            self.problem(path, "must have at least one entry")
        entries: Section = {}
        for key, line, value_node in pairs:
            entry_path = _join(path, key)
            self.lines[entry_path] = line
            if shape.key.pattern is not None and not re.fullmatch(shape.key.pattern, key):
                self.problem(entry_path, f"expected {shape.key.expect} as the key, got {key!r}")
                continue
            value = self.check(value_node, shape.value, entry_path)
            if value is None and isinstance(shape.value, schema.Obj | schema.Tagged):
                # Keeps the name known, so that references to it do not fail as well.
                value = shape.value.defaults() if isinstance(shape.value, schema.Obj) else {}
            if value is not None:
                entries[key] = value
        return entries

    def check_obj(self, node: Node, shape: schema.Obj, path: str) -> Section | None:
        """The known keys that have the right shape, with the defaults of absent ones."""
        pairs = self.pairs(node, path)
        if pairs is None:
            return None
        present = {key: (line, value_node) for key, line, value_node in pairs}
        known = {f.name for f in shape.fields}
        known |= {
            f"{f.name}_file" for f in shape.fields if isinstance(f.shape, schema.Text) and f.shape.secret
        }
        for key, line, _ in pairs:
            if key not in known:
                self.problem(_join(path, key), f"unknown key {key!r}{_did_you_mean(key, known)}", line)
        section: Section = {}
        for f in shape.fields:
            field_path = _join(path, f.name)
            value = self.check_field(f, present, path)
            if value is None and f.default is not None:
                value = f.default
            if value is not None:
                section[f.name] = value
            elif f.required:
                given = field_path in self.lines or _join(path, f"{f.name}_file") in self.lines
                if not given:
                    alternative = (
                        f" (or {f.name}_file)" if isinstance(f.shape, schema.Text) and f.shape.secret else ""
                    )
                    self.problem(
                        field_path, f"missing required key {f.name!r}{alternative}", self.line_of(path)
                    )
        chosen = [name for name in shape.one_of if name in present and not _is_null(present[name][1])]
        if shape.one_of and len(chosen) != 1:
            self.problem(path, f"give exactly one of {' or '.join(shape.one_of)}")
        return section

    def check_field(self, f: schema.Field, present: Mapping[str, tuple[int, Node]], path: str) -> Data | None:
        field_path = _join(path, f.name)
        given = present.get(f.name)
        from_file = present.get(f"{f.name}_file") if isinstance(f.shape, schema.Text) else None
        if given is not None:
            self.lines[field_path] = given[0]
        if given is not None and from_file is not None:
            self.problem(field_path, f"give {f.name} or {f.name}_file, not both")
            return None
        if given is not None:
            value_node = given[1]
            if _is_null(value_node):
                if f.required:
                    self.problem(field_path, "missing value")
                return None
            return self.check(value_node, f.shape, field_path)
        if from_file is not None:
            file_path = f"{field_path}_file"
            self.lines[file_path] = from_file[0]
            return self.check_secret_file(from_file[1], file_path)
        return None

    def check_tagged(self, node: Node, shape: schema.Tagged, path: str) -> Section | None:
        if not isinstance(node, MappingNode):
            self.problem(path, f"expected a mapping, got {_describe(node)}")
            return None
        tag_path = _join(path, shape.tag)
        tag_node = next(
            (value for key, value in node.value if isinstance(key, ScalarNode) and key.value == shape.tag),
            None,
        )
        choices = ", ".join(shape.variants)
        if tag_node is None:
            self.problem(tag_path, f"missing required key {shape.tag!r} (one of {choices})", _line(node))
            return None
        variant = shape.variants.get(tag_node.value) if isinstance(tag_node, ScalarNode) else None
        if variant is None:
            self.problem(tag_path, f"must be one of {choices}, not {_describe(tag_node)}", _line(tag_node))
            return None
        return self.check_obj(node, variant, path)

    def pairs(self, node: Node, path: str) -> list[tuple[str, int, Node]] | None:
        """The (key, line, value) of a mapping, duplicate keys reported and `<<` merges resolved."""
        if not isinstance(node, MappingNode):
            self.problem(path, f"expected a mapping, got {_describe(node)}")
            return None
        first_line: dict[str, int] = {}
        pairs: list[tuple[str, int, Node]] = []
        merged: list[tuple[str, int, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for source in sources:
                    merged.extend(self.pairs(source, path) or [])
                continue
            if not isinstance(key_node, ScalarNode):
                self.problem(path, f"keys must be plain words, not {_describe(key_node)}", _line(key_node))
                continue
            key, line = key_node.value, _line(key_node)
            if key in first_line:
                self.problem(
                    _join(path, key), f"duplicate key {key!r} (first at line {first_line[key]})", line
                )
                continue
            first_line[key] = line
            pairs.append((key, line, value_node))
        for key, line, value_node in merged:
            if key not in first_line:
                first_line[key] = line
                pairs.append((key, line, value_node))
        return pairs

    # -- the model ---------------------------------------------------------------------------------

    def build(self, root: Section) -> Config | None:
        """The model, checked for meaning; None when a required part is missing."""
        entries = {
            section: {name: _section(_section(root, section), name) for name in _section(root, section)}
            for section in ("users", "ring_groups", "ivrs", "lines", "sms_providers")
        }
        self.names = {section: set(named) for section, named in entries.items()}
        asterisk = self.asterisk(_section(root, "asterisk")) if "asterisk" in root else None
        users = {name: self.user(name, section) for name, section in entries["users"].items()}
        ring_groups = {
            name: self.ring_group(name, section) for name, section in entries["ring_groups"].items()
        }
        ivrs = {name: self.ivr(name, section) for name, section in entries["ivrs"].items()}
        lines = {name: self.line(name, section) for name, section in entries["lines"].items()}
        providers = {
            name: self.sms_provider(name, section) for name, section in entries["sms_providers"].items()
        }
        webhooks = [
            self.webhook(item, f"webhooks.{index}") for index, item in enumerate(_list(root, "webhooks"))
        ]
        self.check_storage(_text(root, "storage"))
        http = self.http(_section(root, "http"))
        unknown_number = _section(root, "unknown_number")
        limits = _section(root, "rate_limits")

        self.check_destinations()
        self.check_numbers(_section(root, "lines"))
        self.check_line_loops()
        if self.dial_outs and asterisk is not None and asterisk.outbound_dial is None:
            uses = ", ".join(f"{path} ({number})" for path, number in self.dial_outs)
            self.problem(
                "asterisk.outbound_dial", f"required to dial out to {uses}", self.line_of("asterisk")
            )

        if (
            asterisk is None
            or any(item is None for item in (*users.values(), *ring_groups.values(), *ivrs.values()))
            or any(item is None for item in (*lines.values(), *providers.values(), *webhooks))
        ):
            return None
        return Config(
            asterisk=asterisk,
            lines={name: line for name, line in lines.items() if line is not None},
            storage=_text(root, "storage"),
            http=http,
            users={name: user for name, user in users.items() if user is not None},
            ring_groups={name: group for name, group in ring_groups.items() if group is not None},
            ivrs={name: ivr for name, ivr in ivrs.items() if ivr is not None},
            unknown_number=UnknownNumber(
                action=UnknownNumberAction(_text(unknown_number, "action")),
                hangup_cause=_text(unknown_number, "hangup_cause"),
                context=_text(unknown_number, "context"),
            ),
            sms_providers={name: provider for name, provider in providers.items() if provider is not None},
            webhooks=tuple(webhook for webhook in webhooks if webhook is not None),
            shutdown_grace_seconds=_int(root, "shutdown_grace_seconds"),
            log_level=_text(root, "log_level"),
            external_ring_seconds=_int(root, "external_ring_seconds"),
            rate_limits=TextLimits(
                per_line_per_hour=_int(limits, "per_line_per_hour"),
                global_per_hour=_int(limits, "global_per_hour"),
                daily_cap=_int(limits, "daily_cap"),
            ),
        )

    def asterisk(self, section: Section) -> AsteriskConfig | None:
        self.check_url(_text(section, "url"), "asterisk.url")
        outbound_dial = _opt_text(section, "outbound_dial")
        if outbound_dial is not None:
            self.check_template(outbound_dial, "asterisk.outbound_dial", {"number"}, required="number")
        password = _opt_secret(section, "password")
        if password is None:
            return None
        return AsteriskConfig(
            url=_text(section, "url"),
            username=_text(section, "username"),
            password=password,
            app=_text(section, "app"),
            outbound_dial=outbound_dial,
            connect_timeout_seconds=_seconds(section, "connect_timeout_seconds"),
            request_timeout_seconds=_seconds(section, "request_timeout_seconds"),
        )

    def http(self, section: Section) -> HttpConfig:
        listen, token = _text(section, "listen"), _opt_secret(section, "token")
        if listen.startswith("["):
            host, _, port_text = listen[1:].partition("]:")
        else:
            host, _, port_text = listen.rpartition(":")
        port = int(port_text)
        if not 1 <= port <= 65535:
            self.problem("http.listen", f"port {port} is not between 1 and 65535")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            if listen.startswith("["):
                self.problem("http.listen", f"{host!r} is not an IPv6 address")
            loopback = host == "localhost"
        else:
            loopback = address.is_loopback
        if not loopback and token is None:
            self.problem(
                "http.listen",
                f"listening on {host}, beyond this host, requires http.token (or token_file): "
                "the daemon refuses to serve its API unauthenticated",
            )
        return HttpConfig(host=host, port=port, token=token)

    def user(self, name: str, section: Section) -> User | None:
        path = f"users.{name}"
        backup_number = _opt_text(section, "backup_number")
        if backup_number is not None:
            self.check_dial_out(backup_number, f"{path}.backup_number")
        endpoint = _opt_text(section, "endpoint")
        if endpoint is None:
            return None
        return User(
            name=name,
            endpoint=endpoint,
            backup_number=backup_number,
            ring_seconds=_int(section, "ring_seconds"),
            mailbox=_opt_text(section, "mailbox"),
            ring_when_busy=_flag(section, "ring_when_busy"),
        )

    def ring_group(self, name: str, section: Section) -> RingGroup | None:
        path = f"ring_groups.{name}"
        layers: dict[str, list[str]] = {}
        if "members" in section:
            layers[f"{path}.members"] = _texts(section, "members")
        for index, layer in enumerate(_list(section, "layers")):
            assert isinstance(layer, list)
            layers[f"{path}.layers.{index}"] = [member for member in layer if isinstance(member, str)]
        first_seen: dict[str, str] = {}
        for layer_path, members in layers.items():
            for position, member in enumerate(members):
                member_path = _join(layer_path, position)
                if member not in self.names["users"]:
                    self.problem(
                        member_path,
                        f"{member!r} is not a user{_did_you_mean(member, self.names['users'])}; "
                        f"users {_known(self.names['users'])}",
                    )
                if member in first_seen:
                    self.problem(member_path, f"{member!r} is already in this group at {first_seen[member]}")
                first_seen.setdefault(member, member_path)
        if not layers:
            return None
        queue = _opt_section(section, "queue")
        return RingGroup(
            name=name,
            layers=tuple(tuple(members) for members in layers.values()),
            strategy=Strategy(_text(section, "strategy")),
            ring_seconds=_int(section, "ring_seconds"),
            fishing_mode=_flag(section, "fishing_mode"),
            queue=None
            if queue is None
            else QueueConfig(
                max_wait_seconds=_int(queue, "max_wait_seconds"),
                music_class=_text(queue, "music_class"),
                announce_position_seconds=_opt_int(queue, "announce_position_seconds"),
            ),
            cid_name_prefix=_opt_text(section, "cid_name_prefix"),
            ring_when_busy=_flag(section, "ring_when_busy"),
        )

    def ivr(self, name: str, section: Section) -> Ivr | None:
        path = f"ivrs.{name}"
        options = {
            key: self.destination(value, f"{path}.options.{key}")
            for key, value in _section(section, "options").items()
            if isinstance(value, str)
        }
        no_input, invalid = (self.opt_destination(section, key, path) for key in ("no_input", "invalid"))
        prompt = _opt_text(section, "prompt")
        if prompt is None or "options" not in section:
            return None
        return Ivr(
            name=name,
            prompt=prompt,
            options=options,
            timeout_seconds=_int(section, "timeout_seconds"),
            attempts=_int(section, "attempts"),
            no_input=no_input,
            invalid=invalid,
            invalid_prompt=_text(section, "invalid_prompt"),
        )

    def line(self, name: str, section: Section) -> Line | None:
        path = f"lines.{name}"
        timezone_name = _text(section, "timezone")
        try:
            timezone = ZoneInfo(timezone_name)
        except (ZoneInfoNotFoundError, ValueError):
            self.problem(
                f"{path}.timezone", f"unknown time zone {timezone_name!r}; use a name like America/New_York"
            )
            timezone = ZoneInfo("UTC")
        business_hours = self.business_hours(section, path)
        after_hours = self.destination(_text(section, "after_hours"), f"{path}.after_hours")
        missed_calls = self.missed_calls(_section(section, "missed_calls"), f"{path}.missed_calls")
        numbers = _texts(section, "numbers") if "numbers" in section else None
        followup = _opt_section(section, "followup_text")
        followup_text = self.followup_text(followup, f"{path}.followup_text", numbers) if followup else None
        route = self.opt_destination(section, "route", path)
        if route is None or numbers is None:
            return None
        return Line(
            name=name,
            numbers=tuple(numbers),
            route=route,
            timezone=timezone,
            business_hours=business_hours,
            after_hours=after_hours,
            welcome=_opt_text(section, "welcome"),
            short_abandon_seconds=_int(section, "short_abandon_seconds"),
            missed_calls=missed_calls,
            followup_text=followup_text,
            cid_name_prefix=_text(section, "cid_name_prefix"),
            language=_opt_text(section, "language"),
        )

    def business_hours(self, section: Section, path: str) -> BusinessHours | None:
        holidays: set[date] = set()
        for index, text in enumerate(_texts(section, "holidays")):
            try:
                holidays.add(date.fromisoformat(text))
            except ValueError:
                self.problem(f"{path}.holidays.{index}", f"{text!r} is not a date")
        weekly_spec = _opt_section(section, "business_hours")
        if weekly_spec is None:
            # Holidays alone: open around the clock, except on those days.
            return (
                BusinessHours({day: (_WHOLE_DAY,) for day in range(7)}, frozenset(holidays))
                if holidays
                else None
            )
        weekly: dict[int, list[tuple[TimeRange, str]]] = {}
        for days_key, ranges in weekly_spec.items():
            days_path = f"{path}.business_hours.{days_key}"
            days = self.days(days_key, days_path)
            assert isinstance(ranges, list)
            for index, range_text in enumerate(ranges):
                assert isinstance(range_text, str)
                time_range = self.time_range(range_text, _join(days_path, index))
                if time_range is None:
                    continue
                for day in days:
                    weekly.setdefault(day, []).append((time_range, _join(days_path, index)))
        self.check_overlaps(weekly)
        return BusinessHours(
            weekly={
                day: tuple(sorted((r for r, _ in entries), key=lambda r: r.start))
                for day, entries in weekly.items()
            },
            holidays=frozenset(holidays),
        )

    def days(self, key: str, path: str) -> list[int]:
        if key == "daily":
            return list(range(7))
        first, _, last = key.partition("-")
        start = schema.DAY_KEYS.index(first)
        end = schema.DAY_KEYS.index(last or first)
        if end < start:
            self.problem(path, f"day range {key!r} runs backwards; days go mon..sun (split it in two)")
        return list(range(start, end + 1))

    def time_range(self, text: str, path: str) -> TimeRange | None:
        start_text, end_text = text.split("-")
        start, end = _parse_time(start_text), _parse_time(end_text)
        if end < start:
            self.problem(
                path,
                f"{text!r} crosses midnight; ranges end by 24:00: write {start_text}-24:00 on this day "
                f"and 00:00-{end_text} on the next",
            )
            return None
        if end == start:
            self.problem(path, f"{text!r} is empty: a range must end after it starts")
            return None
        return TimeRange(start, end)

    def check_overlaps(self, weekly: Mapping[int, list[tuple[TimeRange, str]]]) -> None:
        overlaps: dict[tuple[str, str], list[str]] = {}
        for day, entries in sorted(weekly.items()):
            latest: tuple[TimeRange, str] | None = None
            for entry in sorted(entries, key=lambda e: (e[0].start, e[1])):
                if latest is not None and entry[0].start < latest[0].end:
                    overlaps.setdefault((entry[1], latest[1]), []).append(schema.DAY_KEYS[day])
                if latest is None or entry[0].end > latest[0].end:
                    latest = entry
        for (path, other_path), days in overlaps.items():
            self.problem(path, f"overlaps {other_path} on {', '.join(days)}")

    def missed_calls(self, section: Section, path: str) -> MissedCalls:
        action = self.destination(_text(section, "action"), f"{path}.action")
        if action.kind not in _MISSED_CALL_ACTIONS:
            self.problem(f"{path}.action", f"must be voicemail, line:NAME or external:+E164, not {action}")
        return MissedCalls(
            action=action,
            mailbox=_opt_text(section, "mailbox"),
            press_1_for_voicemail=_flag(section, "press_1_for_voicemail"),
            press_1_prompt=_text(section, "press_1_prompt"),
            press_1_timeout_seconds=_int(section, "press_1_timeout_seconds"),
        )

    def followup_text(self, section: Section, path: str, numbers: list[str] | None) -> FollowupText | None:
        """`numbers` is None when the line's own are wrong: then no default is derived from them."""
        line_e164 = next((number for number in numbers or () if number.startswith("+")), None)
        providers = self.names["sms_providers"]
        provider = _opt_text(section, "provider")
        if provider is None:
            if len(providers) == 1:
                (provider,) = providers
            else:
                reason = "there are several sms_providers" if providers else "add one under sms_providers"
                self.problem(f"{path}.provider", f"name the sms provider to send with: {reason}")
        elif provider not in providers:
            self.problem(
                f"{path}.provider",
                f"no sms provider {provider!r}{_did_you_mean(provider, providers)}; {_known(providers)}",
            )
        sender = _opt_text(section, "from")
        if sender is None:
            sender = line_e164
            if sender is None and numbers is not None:
                self.problem(f"{path}.from", "required: the line has no E.164 number to send from")
        elif not _valid_e164(sender):
            self.problem(f"{path}.from", f"{sender} is not a valid E.164 number")
        countries = _texts(section, "allowed_countries")
        for index, country in enumerate(countries):
            if country not in phonenumbers.SUPPORTED_REGIONS:
                self.problem(f"{path}.allowed_countries.{index}", f"{country!r} is not a known region code")
        if "allowed_countries" not in section:
            region = _region(line_e164 or sender or "")
            if region is None and numbers is not None:
                self.problem(
                    f"{path}.allowed_countries", "required: no country follows from the line's numbers"
                )
            countries = [region] if region else []
        quiet = _opt_section(section, "quiet_hours")
        quiet_hours = None
        if quiet is not None and "start" in quiet and "end" in quiet:
            quiet_hours = QuietHours(_parse_time(_text(quiet, "start")), _parse_time(_text(quiet, "end")))
            if quiet_hours.start == quiet_hours.end:
                self.problem(f"{path}.quiet_hours", "start and end are the same time")
        messages = {
            kind: _text(_section(section, "messages"), kind) for kind in _section(section, "messages")
        }
        for kind, template in messages.items():
            self.check_template(template, f"{path}.messages.{kind}", TEMPLATE_VARIABLES)
        if provider is None or sender is None:
            return None
        return FollowupText(
            provider=provider,
            sender=sender,
            on=frozenset(_texts(section, "on")),
            delay_seconds=_int(section, "delay_seconds"),
            once_per_caller_hours=_int(section, "once_per_caller_hours"),
            quiet_hours=quiet_hours,
            messages=messages,
            allowed_countries=frozenset(countries),
        )

    def sms_provider(self, name: str, section: Section) -> SmsProvider | None:
        path = f"sms_providers.{name}"
        kind = _opt_text(section, "type")
        if kind is None:
            return None
        provider_type = SmsProviderType(kind)
        variant = schema.SMS_PROVIDER.variants[provider_type]
        settings = {key: value for key, value in section.items() if key != "type" and isinstance(value, str)}
        for key in ("url", "base_url"):
            if key in settings:
                self.check_url(settings[key], f"{path}.{key}")
        if "endpoint" in settings:
            self.check_template(settings["endpoint"], f"{path}.endpoint", {"to", "from"}, required="to")
        if any(f.required and f.name not in settings for f in variant.fields if f.name != "type"):
            return None
        return SmsProvider(name=name, type=provider_type, settings=settings)

    def webhook(self, item: Data, path: str) -> Webhook | None:
        assert isinstance(item, dict)
        url = _opt_text(item, "url")
        if url is None:
            return None
        self.check_url(url, f"{path}.url")
        return Webhook(url=url, secret=_opt_secret(item, "secret"), events=frozenset(_texts(item, "events")))

    # -- meaning -----------------------------------------------------------------------------------

    def destination(self, text: str, path: str) -> Destination:
        kind, _, target = text.partition(":")
        destination = Destination(DestinationKind(kind), target or None)
        self.destinations.append((path, destination))
        return destination

    def opt_destination(self, section: Section, key: str, path: str) -> Destination | None:
        text = _opt_text(section, key)
        return None if text is None else self.destination(text, _join(path, key))

    def check_destinations(self) -> None:
        sections = {
            DestinationKind.IVR: "ivrs",
            DestinationKind.RING_GROUP: "ring_groups",
            DestinationKind.USER: "users",
            DestinationKind.LINE: "lines",
        }
        for path, destination in self.destinations:
            target = destination.target or ""
            if destination.kind == DestinationKind.EXTERNAL:
                self.check_dial_out(target, path)
            elif destination.kind in sections:
                names = self.names[sections[destination.kind]]
                if target not in names:
                    self.problem(
                        path,
                        f"no {destination.kind.value} named {target!r}{_did_you_mean(target, names)}; "
                        f"{sections[destination.kind]} {_known(names)}",
                    )

    def check_dial_out(self, number: str, path: str) -> None:
        if not _valid_e164(number):
            self.problem(path, f"{number} is not a valid E.164 number")
        self.dial_outs.append((path, number))

    def check_numbers(self, lines: Section) -> None:
        owner: dict[str, str] = {}
        for name, section in lines.items():
            assert isinstance(section, dict)
            for index, number in enumerate(_texts(section, "numbers")):
                path = f"lines.{name}.numbers.{index}"
                if number in owner:
                    self.problem(path, f"{number} is already used by {owner[number]}")
                owner.setdefault(number, path)

    def check_line_loops(self) -> None:
        """Lines that pass calls on to each other (or themselves) would pass a caller around forever;
        a caller's own choice in an IVR is no loop."""
        lines = self.names["lines"]
        edges: dict[str, list[tuple[str, str]]] = {}
        for path, destination in self.destinations:
            section, _, rest = path.partition(".")
            name, _, key = rest.partition(".")
            target = destination.target or ""
            onward = key in ("route", "after_hours", "missed_calls.action")
            if section == "lines" and onward and destination.kind == DestinationKind.LINE and target in lines:
                edges.setdefault(name, []).append((path, target))
        reach = {name: self.reachable(name, edges) for name in lines}
        reported: set[str] = set()
        for name in sorted(lines):
            if name not in reach[name] or name in reported:
                continue
            loop = {other for other in reach[name] if name in reach[other]}
            reported |= loop
            hops = sorted(
                (path, target) for source in loop for path, target in edges.get(source, []) if target in loop
            )
            listed = ", ".join(f"{path} -> line:{target}" for path, target in hops)
            self.problem(hops[0][0], f"lines send calls around in a loop: {listed}")

    @staticmethod
    def reachable(start: str, edges: Mapping[str, list[tuple[str, str]]]) -> set[str]:
        seen: set[str] = set()
        pending = [target for _, target in edges.get(start, [])]
        while pending:
            name = pending.pop()
            if name not in seen:
                seen.add(name)
                pending.extend(target for _, target in edges.get(name, []))
        return seen

    def check_template(
        self, template: str, path: str, allowed: Iterable[str], required: str | None = None
    ) -> None:
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
        except ValueError as error:
            self.problem(path, f"bad template: {error} (write a literal brace as {{{{ or }}}})")
            return
        allowed = set(allowed)
        for name in sorted(fields - allowed):
            variables = ", ".join(f"{{{variable}}}" for variable in sorted(allowed))
            self.problem(path, f"unknown variable {{{name}}}; use {variables}")
        if required is not None and required not in fields:
            self.problem(path, f"must contain {{{required}}}")

    def check_url(self, url: str, path: str) -> None:
        parts = urlsplit(url)
        try:
            parts.port  # noqa: B018 - parsing the port is the check
        except ValueError:
            self.problem(path, "the URL has a bad port")
        if parts.username is not None or parts.password is not None:
            self.problem(path, "credentials do not belong in a URL; give them as their own keys")
        elif not parts.hostname:
            self.problem(path, "the URL has no host")

    def check_storage(self, url: str) -> None:
        scheme, _, rest = url.partition("://")
        if scheme == "sqlite" and not rest.strip("/"):
            self.problem("storage", "sqlite:/// needs a database file path")
        if scheme == "postgresql" and not urlsplit(url).hostname and "host=" not in url:
            self.problem("storage", "postgresql:// needs a host")
