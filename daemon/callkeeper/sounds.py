"""The sounds a config plays (`sound:NAME` media) and whether Asterisk has them.

A prompt Asterisk does not have fails at the first call that needs it and silently moves the call
on, so the daemon asks ARI (`GET /sounds/{id}`) for each one at every connect and after a reload,
logs the missing ones and names them in /readyz; `callkeeper check-config --asterisk FILE` does the
same against a running Asterisk, each missing sound as `FILE:LINE: PATH: message`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node

from callkeeper.ari.errors import AriNotFound
from callkeeper.ari.rest import AriRestClient
from callkeeper.config.model import Config

SOUND = "sound:"


@dataclass(frozen=True, slots=True)
class SoundUse:
    """Where a config plays a sound: its YAML path, and the language of the line it plays on
    (None: any language will do)."""

    path: str
    language: str | None = None


def sound_uses(config: Config) -> dict[str, list[SoundUse]]:
    """Every `sound:` the config plays, by sound id."""
    uses: dict[str, list[SoundUse]] = {}

    def add(media: str, use: SoundUse) -> None:
        if media.startswith(SOUND):
            uses.setdefault(media.removeprefix(SOUND), []).append(use)

    for name, line in config.lines.items():
        if line.welcome:
            add(line.welcome, SoundUse(f"lines.{name}.welcome", line.language))
        if line.missed_calls.press_1_for_voicemail:
            add(
                line.missed_calls.press_1_prompt,
                SoundUse(f"lines.{name}.missed_calls.press_1_prompt", line.language),
            )
    for name, ivr in config.ivrs.items():
        add(ivr.prompt, SoundUse(f"ivrs.{name}.prompt"))
        add(ivr.invalid_prompt, SoundUse(f"ivrs.{name}.invalid_prompt"))
    return uses


async def missing_sounds(rest: AriRestClient, config: Config) -> dict[str, list[str]]:
    """The sounds Asterisk lacks (in the language of the line that plays them), with the YAML paths
    that name them."""
    missing: dict[str, list[str]] = {}
    for sound, uses in sorted(sound_uses(config).items()):
        try:
            languages = await rest.sound_languages(sound)
        except AriNotFound:
            languages = frozenset()
        for use in uses:
            if not languages or (use.language and not _speaks(languages, use.language)):
                missing.setdefault(sound, []).append(use.path)
    return missing


def _speaks(languages: frozenset[str], language: str) -> bool:
    """`fr` is there as `fr` or as a variant like `fr_FR`."""
    return any(have == language or have.startswith(f"{language}_") for have in languages)


def describe(sound: str, language: str | None = None) -> str:
    where = f" in {language}" if language else ""
    return f"sound {sound!r} is not installed in Asterisk{where} (ARI GET /sounds/{sound}: not found)"


def problems(config: Config, missing: Mapping[str, list[str]], config_path: Path) -> list[str]:
    """Each missing sound's use as `FILE:LINE: PATH: message`."""
    lines = _yaml_lines(config_path)
    languages = {use.path: use.language for uses in sound_uses(config).values() for use in uses}
    return [
        f"{config_path}:{lines.get(path, 0)}: {path}: {describe(sound, languages.get(path))}"
        for sound, paths in missing.items()
        for path in paths
    ]


def _yaml_lines(config_path: Path) -> dict[str, int]:
    """The line of every mapping value of the file, by dotted path."""
    lines: dict[str, int] = {}

    def walk(node: Node, path: str) -> None:
        if isinstance(node, MappingNode):
            for key, value in node.value:
                child = f"{path}.{key.value}" if path else str(key.value)
                lines[child] = value.start_mark.line + 1
                walk(value, child)

    try:
        root = yaml.compose(config_path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, yaml.YAMLError):
        return lines
    if root is not None:
        walk(root, "")
    return lines
