"""The shape of a YAML file and its checker: what keys, types and formats each node must have.

The YAML is composed into a node tree (never constructed), so every value keeps its line. `Checker`
walks the tree against a `Shape` and returns plain data (`${NAME}` substituted, `<key>_file` secrets
read, defaults filled in), recording each problem with its dotted YAML path and line instead of
raising. It knows nothing of callkeeper: `config.json_schema` says what callkeeper.yaml looks like and
`config.loader` builds the model from the checked data.
"""

from __future__ import annotations

import difflib
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from callkeeper.config.model import Secret
from callkeeper.config.redaction import redact

Data: TypeAlias = "str | int | float | bool | list[Data] | dict[str, Data]"
Section: TypeAlias = "dict[str, Data]"

NAME = r"[A-Za-z0-9][A-Za-z0-9_-]*"
_TAG = "tag:yaml.org,2002:"
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_YAML_LOADER = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader  # same nodes, faster
# Numbers are written in plain decimal: YAML 1.1 would also read 0x1f, 017 (octal), 1:30 (base 60),
# and `!!int` / `!!float` / `!!bool` tags on anything, none of which an operator means for seconds.
_INTEGER = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_DECIMAL = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]{1,3})?")
_NOT_FINITE = re.compile(r"[-+]?\.(?:inf|nan)", re.I)
_MAX_DIGITS = 15
_FLAGS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
MAX_FILE_BYTES = 1024 * 1024
MAX_SECRET_FILE_BYTES = 64 * 1024
# Aliases and merge keys can make a small file stand for a huge (or endless) one: the checker visits
# at most this many values and follows merges at most this deep.
MAX_VALUES = 100_000
MAX_MERGE_DEPTH = 16
_SHOWN_CHARACTERS = 60


@dataclass(frozen=True, slots=True)
class Text:
    """A string, after `${NAME}` substitution. `expect` says in words what `pattern` wants."""

    pattern: str | None = None
    expect: str = ""
    choices: tuple[str, ...] = ()
    secret: bool = False


@dataclass(frozen=True, slots=True)
class Integer:
    """A whole number from `minimum` to `maximum`."""

    minimum: int
    maximum: int


@dataclass(frozen=True, slots=True)
class Number:
    """A positive number of seconds up to `maximum` (an integer is fine)."""

    maximum: float


@dataclass(frozen=True, slots=True)
class Flag:
    pass


@dataclass(frozen=True, slots=True)
class ListOf:
    item: Shape
    min_items: int = 0


@dataclass(frozen=True, slots=True)
class MapOf:
    """A mapping whose keys are chosen by the operator (names, days, DTMF keys)."""

    value: Shape
    key: Text = Text(NAME, "a name of letters, digits, '-' and '_'")
    min_items: int = 0


@dataclass(frozen=True, slots=True)
class Field:
    """A key of an `Obj`. A `secret` text may instead be given as `<name>_file: PATH`."""

    name: str
    shape: Shape
    required: bool = False
    default: Any = None
    doc: str = ""


@dataclass(frozen=True, slots=True)
class Obj:
    """A mapping with fixed keys; exactly one key of `one_of` must be present when it is not empty."""

    fields: tuple[Field, ...]
    doc: str = ""
    one_of: tuple[str, ...] = ()

    def defaults(self) -> dict[str, Any]:
        """The object an absent key of this shape stands for."""
        return {f.name: f.default for f in self.fields if f.default is not None}


@dataclass(frozen=True, slots=True)
class Tagged:
    """An `Obj` chosen by the value of its `tag` key."""

    tag: str
    variants: Mapping[str, Obj]


Shape = Text | Integer | Number | Flag | ListOf | MapOf | Obj | Tagged


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with the file: where (a dotted YAML path and its line) and what."""

    path: str
    line: int
    message: str

    def format(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        path = self.path if len(self.path) <= _SHOWN_CHARACTERS * 2 else f"{self.path[:_SHOWN_CHARACTERS]}..."
        return f"{where}: {path}: {self.message}" if path else f"{where}: {self.message}"


class ConfigError(Exception):
    """The file is not a valid configuration; `str()` lists every problem, one per line."""

    def __init__(self, problems: list[ConfigProblem], source: str = "<config>") -> None:
        unique = list(dict.fromkeys(problems))
        self.problems = sorted(unique, key=lambda problem: problem.line)
        self.source = source
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [redact(problem.format(self.source)) for problem in self.problems]


def compose(text: str, source: str) -> Node:
    """The node tree of `text`; a `ConfigError` if it is not YAML, empty or too big."""
    if len(text) > MAX_FILE_BYTES:
        raise ConfigError(
            [ConfigProblem("", 0, f"the file is larger than {MAX_FILE_BYTES // 1024} KiB")], source
        )
    try:
        root = yaml.compose(text, Loader=_YAML_LOADER)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        message = " ".join(part for part in (error.context, error.problem) if part)
        problem = ConfigProblem("", mark.line + 1 if mark else 0, f"not valid YAML: {message}")
        raise ConfigError([problem], source) from None
    except yaml.YAMLError as error:
        raise ConfigError([ConfigProblem("", 0, f"not valid YAML: {error}")], source) from None
    if root is None:
        raise ConfigError([ConfigProblem("", 1, "the file is empty")], source)
    return root


def join(path: str, key: str | int) -> str:
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
    if kind in ("int", "float") and _DECIMAL.fullmatch(node.value):
        return f"the number {shown(node.value, quoted=False)}"
    if kind == "bool" and node.value.lower() in _FLAGS:
        return str(node.value)
    return shown(node.value)


def shown(value: str, *, quoted: bool = True) -> str:
    """`value` as a message may quote it: short, and without credentials."""
    text = repr(value) if quoted else value
    if len(text) > _SHOWN_CHARACTERS:
        text = f"{text[: _SHOWN_CHARACTERS - 5]}... ({len(value)} characters)"
    return redact(text)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Problems:
    """The problems found so far, and the line of every YAML path seen: a problem is reported at the
    line of its path, or else of the nearest enclosing path seen."""

    def __init__(self) -> None:
        self.found: list[ConfigProblem] = []
        self.lines: dict[str, int] = {"": 1}

    def add(self, path: str, message: str, line: int | None = None) -> None:
        self.found.append(ConfigProblem(path, self.line_of(path) if line is None else line, message))

    def line_of(self, path: str) -> int:
        while path not in self.lines:
            path = path.rpartition(".")[0]
        return self.lines[path]


class Checker:
    """Checks YAML nodes against shapes. `env` gives `${NAME}`; relative `<key>_file` paths are
    relative to `base_dir`."""

    def __init__(self, env: Mapping[str, str], base_dir: Path) -> None:
        self.env = env
        self.base_dir = base_dir
        self.problems = Problems()
        self.values_left = MAX_VALUES

    def check_file(self, root: Node, shape: Obj) -> Section | None:
        """The whole file: `check_obj` of the root, stopped (with one problem) if aliases and merge
        keys make it stand for more than `MAX_VALUES` values."""
        try:
            return self.check_obj(root, shape, "")
        except _TooManyValues:
            self.problems.add(
                "", f"aliases and merge keys expand the file to more than {MAX_VALUES} values", 0
            )
            return None

    def visit(self) -> None:
        self.values_left -= 1
        if self.values_left < 0:
            raise _TooManyValues

    def check(self, node: Node, shape: Shape, path: str) -> Data | None:
        """The value of `node` if it has `shape`, else None (with the problems recorded)."""
        self.visit()
        match shape:
            case Text():
                return self.check_text(node, shape, path)
            case Integer():
                return self.check_integer(node, shape, path)
            case Number():
                return self.check_seconds(node, shape, path)
            case Flag():
                value = _FLAGS.get(node.value.lower()) if _scalar_of(node, "bool") else None
                if value is None:
                    self.problems.add(path, f"expected true or false, got {_describe(node)}")
                return value
            case ListOf():
                return self.check_list(node, shape, path)
            case MapOf():
                return self.check_map(node, shape, path)
            case Obj():
                return self.check_obj(node, shape, path)
            case Tagged():
                return self.check_tagged(node, shape, path)
        raise AssertionError(shape)

    def check_integer(self, node: Node, shape: Integer, path: str) -> int | None:
        if not _scalar_of(node, "int"):
            self.problems.add(path, f"expected an integer, got {_describe(node)}")
            return None
        if not _INTEGER.fullmatch(node.value):
            self.problems.add(path, f"expected a plain decimal integer, got {_describe(node)}")
            return None
        # Past any range, and converting 5,000 digits is refused by Python (or slow).
        beyond = 10**_MAX_DIGITS * (-1 if node.value.startswith("-") else 1)
        number = int(node.value) if len(node.value.lstrip("+-")) <= _MAX_DIGITS else beyond
        given = shown(node.value, quoted=False)
        if number < shape.minimum:
            self.problems.add(path, f"must be at least {shape.minimum}, not {given}")
            return None
        if number > shape.maximum:
            self.problems.add(path, f"must be at most {shape.maximum}, not {given}")
            return None
        return number

    def check_seconds(self, node: Node, shape: Number, path: str) -> float | None:
        if not (_scalar_of(node, "int") or _scalar_of(node, "float")):
            self.problems.add(path, f"expected a number of seconds, got {_describe(node)}")
            return None
        if _NOT_FINITE.fullmatch(node.value):
            seconds = 0.0  # not positive: reported below
        elif _DECIMAL.fullmatch(node.value):
            seconds = float(node.value)
        else:
            self.problems.add(path, f"expected a plain decimal number of seconds, got {_describe(node)}")
            return None
        value = shown(node.value, quoted=False)
        if seconds <= 0:
            self.problems.add(path, f"must be a positive number of seconds, not {value}")
            return None
        if seconds > shape.maximum:
            self.problems.add(path, f"must be at most {shape.maximum:g} seconds, not {value}")
            return None
        return seconds

    def check_text(self, node: Node, shape: Text, path: str) -> str | None:
        expect = shape.expect or "a string"
        if not isinstance(node, ScalarNode) or _is_null(node):
            self.problems.add(path, f"expected {expect}, got {_describe(node)}")
            return None
        value = self.substitute(node.value, path)
        if value is None:
            return None
        if not value:
            self.problems.add(path, "must not be empty")
            return None
        # What came from the environment is not repeated: it may be a credential.
        given = shown(value) if value == node.value else f"{shown(node.value)} (substituted)"
        if shape.choices and value not in shape.choices:
            choices = ", ".join(shape.choices)
            self.problems.add(
                path, f"must be one of {choices}, not {given}{did_you_mean(value, shape.choices)}"
            )
            return None
        if shape.pattern is not None and not re.fullmatch(shape.pattern, value):
            self.problems.add(path, f"expected {expect}, got {given}")
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
            self.problems.add(path, f"environment variable {name} is not set")
        malformed = "${" in _ENV_REFERENCE.sub("", raw)
        if malformed:
            self.problems.add(path, "malformed ${...}: write ${NAME} with letters, digits and _")
        return None if missing or malformed else value

    def check_secret_file(self, node: Node, path: str) -> Secret | None:
        name = self.check_text(node, Text(expect="a file path"), path)
        if name is None:
            return None
        file = self.base_dir / name
        try:
            content = read_limited(file, MAX_SECRET_FILE_BYTES, regular=True).strip()
        except (OSError, UnicodeDecodeError, ValueError) as error:
            self.problems.add(path, f"cannot read {file}: {getattr(error, 'strerror', None) or error}")
            return None
        if not content:
            self.problems.add(path, f"{file} is empty")
            return None
        return Secret(content)

    def check_list(self, node: Node, shape: ListOf, path: str) -> list[Data] | None:
        """All items, or None if any is wrong (so that item indexes in later messages stay right)."""
        if not isinstance(node, SequenceNode):
            self.problems.add(path, f"expected a list, got {_describe(node)}")
            return None
        if len(node.value) < shape.min_items:
            self.problems.add(path, "must not be empty")
            return None
        items: list[Data] = []
        for index, item_node in enumerate(node.value):
            item_path = join(path, index)
            self.problems.lines[item_path] = _line(item_node)
            item = self.check(item_node, shape.item, item_path)
            if item is not None:
                items.append(item)
        return items if len(items) == len(node.value) else None

    def check_map(self, node: Node, shape: MapOf, path: str) -> Section | None:
        pairs = self.pairs(node, path)
        if pairs is None:
            return None
        if len(pairs) < shape.min_items:
            self.problems.add(path, "must have at least one entry")
        entries: Section = {}
        for key, line, value_node in pairs:
            entry_path = join(path, key)
            self.problems.lines[entry_path] = line
            if shape.key.pattern is not None and not re.fullmatch(shape.key.pattern, key):
                self.problems.add(entry_path, f"expected {shape.key.expect} as the key, got {shown(key)}")
                continue
            value = self.check(value_node, shape.value, entry_path)
            if value is None and isinstance(shape.value, Obj | Tagged):
                # Keeps the name known, so that references to it do not fail as well.
                value = shape.value.defaults() if isinstance(shape.value, Obj) else {}
            if value is not None:
                entries[key] = value
        return entries

    def check_obj(self, node: Node, shape: Obj, path: str) -> Section | None:
        """The known keys that have the right shape, with the defaults of absent ones."""
        pairs = self.pairs(node, path)
        if pairs is None:
            return None
        present = {key: (line, value_node) for key, line, value_node in pairs}
        known = {f.name for f in shape.fields}
        known |= {f"{f.name}_file" for f in shape.fields if isinstance(f.shape, Text) and f.shape.secret}
        for key, line, _ in pairs:
            if key not in known:
                self.problems.add(
                    join(path, key), f"unknown key {shown(key)}{did_you_mean(key, known)}", line
                )
        section: Section = {}
        for f in shape.fields:
            field_path = join(path, f.name)
            value = self.check_field(f, present, path)
            if value is None and f.default is not None:
                value = f.default
            if value is not None:
                section[f.name] = value
            elif f.required:
                given = (
                    field_path in self.problems.lines or join(path, f"{f.name}_file") in self.problems.lines
                )
                if not given:
                    alternative = (
                        f" (or {f.name}_file)" if isinstance(f.shape, Text) and f.shape.secret else ""
                    )
                    self.problems.add(
                        field_path,
                        f"missing required key {f.name!r}{alternative}",
                        self.problems.line_of(path),
                    )
        chosen = [name for name in shape.one_of if name in present and not _is_null(present[name][1])]
        if shape.one_of and len(chosen) != 1:
            self.problems.add(path, f"give exactly one of {' or '.join(shape.one_of)}")
        return section

    def check_field(self, f: Field, present: Mapping[str, tuple[int, Node]], path: str) -> Data | None:
        field_path = join(path, f.name)
        given = present.get(f.name)
        from_file = present.get(f"{f.name}_file") if isinstance(f.shape, Text) else None
        if given is not None:
            self.problems.lines[field_path] = given[0]
        if given is not None and from_file is not None:
            self.problems.add(field_path, f"give {f.name} or {f.name}_file, not both")
            return None
        if given is not None:
            value_node = given[1]
            if _is_null(value_node):
                if f.required:
                    self.problems.add(field_path, "missing value")
                return None
            return self.check(value_node, f.shape, field_path)
        if from_file is not None:
            file_path = f"{field_path}_file"
            self.problems.lines[file_path] = from_file[0]
            return self.check_secret_file(from_file[1], file_path)
        return None

    def check_tagged(self, node: Node, shape: Tagged, path: str) -> Section | None:
        if not isinstance(node, MappingNode):
            self.problems.add(path, f"expected a mapping, got {_describe(node)}")
            return None
        tag_path = join(path, shape.tag)
        tag_node = next(
            (value for key, value in node.value if isinstance(key, ScalarNode) and key.value == shape.tag),
            None,
        )
        choices = ", ".join(shape.variants)
        if tag_node is None:
            self.problems.add(tag_path, f"missing required key {shape.tag!r} (one of {choices})", _line(node))
            return None
        variant = shape.variants.get(tag_node.value) if isinstance(tag_node, ScalarNode) else None
        if variant is None:
            self.problems.add(
                tag_path, f"must be one of {choices}, not {_describe(tag_node)}", _line(tag_node)
            )
            return None
        return self.check_obj(node, variant, path)

    def pairs(
        self, node: Node, path: str, merging: tuple[Node, ...] = ()
    ) -> list[tuple[str, int, Node]] | None:
        """The (key, line, value) of a mapping, duplicate keys reported and `<<` merges resolved;
        `merging` are the mappings whose merge keys led here."""
        if not isinstance(node, MappingNode):
            self.problems.add(path, f"expected a mapping, got {_describe(node)}")
            return None
        first_line: dict[str, int] = {}
        pairs: list[tuple[str, int, Node]] = []
        merged: list[tuple[str, int, Node]] = []
        for key_node, value_node in node.value:
            self.visit()
            if key_node.tag == _TAG + "merge":
                merged.extend(self.merge(value_node, path, (*merging, node), _line(key_node)))
                continue
            if not isinstance(key_node, ScalarNode):
                self.problems.add(
                    path, f"keys must be plain words, not {_describe(key_node)}", _line(key_node)
                )
                continue
            key, line = key_node.value, _line(key_node)
            if key in first_line:
                self.problems.add(
                    join(path, key), f"duplicate key {shown(key)} (first at line {first_line[key]})", line
                )
                continue
            first_line[key] = line
            pairs.append((key, line, value_node))
        for key, line, value_node in merged:
            if key not in first_line:
                first_line[key] = line
                pairs.append((key, line, value_node))
        return pairs

    def merge(
        self, value_node: Node, path: str, merging: tuple[Node, ...], line: int
    ) -> list[tuple[str, int, Node]]:
        """The pairs a `<<` key brings in: of one mapping or of a list of them."""
        sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
        merged: list[tuple[str, int, Node]] = []
        for source in sources:
            if any(source is outer for outer in merging):
                self.problems.add(path, "the merge key << brings in a mapping that contains it", line)
            elif len(merging) > MAX_MERGE_DEPTH:
                self.problems.add(path, f"merge keys << nest deeper than {MAX_MERGE_DEPTH}", line)
            else:
                merged.extend(self.pairs(source, path, merging) or [])
        return merged


class _TooManyValues(Exception):
    pass


def _scalar_of(node: Node, kind: str) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _TAG + kind


def read_limited(file: Path, limit: int, *, regular: bool = False) -> str:
    """The text of `file`; a `ValueError` if it is larger than `limit` bytes or, with `regular`,
    not a regular file (a device or a pipe might never end)."""
    if regular and not stat.S_ISREG(file.stat().st_mode):
        raise ValueError("not a regular file")
    with file.open("rb") as opened:
        data = opened.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"larger than {limit // 1024} KiB")
    return data.decode("utf-8")
