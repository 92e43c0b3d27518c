"""The recorded journal of a live run: everything the engine was given, in the order it got it.

One gzipped JSON line each:
    {"header": {...}}                   the config body, the machine, the Asterisk version
    {"e": {...}}                        an ARI event exactly as the websocket carried it
    {"i": {"type": "TimerFired", ...}}  an input that did not come from an event (timer, failed
                                        ARI request, endpoint state at connect, presence, ...)
    {"verdicts": {call_id: [outcome, reason, short]}}   what the live daemon decided
"""

from __future__ import annotations

import dataclasses
import gzip
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from callkeeper.calls import actions as act
from callkeeper.calls import inputs as ev
from callkeeper.records import CallRecord

Json = dict[str, Any]
Verdict = tuple[str, str, bool]


def encode_input(item: ev.Input) -> Json:
    out: Json = {"type": type(item).__name__}
    for f in dataclasses.fields(item):
        value = getattr(item, f.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):  # an ActionFailed's action
            value = {"type": type(value).__name__, **dataclasses.asdict(value)}
        out[f.name] = value
    return out


def decode_input(data: Json) -> ev.Input:
    cls = getattr(ev, data["type"])
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            value = data[f.name]
            if "datetime" in str(f.type):
                value = datetime.fromisoformat(value)
            elif f.name == "action":
                value = _decode_action(value, data)
            elif "Timer" in str(f.type):
                value = act.Timer(value)
            kwargs[f.name] = value
    item: ev.Input = cls(**kwargs)
    return item


def _decode_action(value: str | Json, failed: Json) -> act.Action:
    """Journals recorded before ActionFailed carried the action hold its class name only: its call
    and target are the action's call and channel."""
    if isinstance(value, str):
        value = {"type": value, "call_id": failed["call_id"], "channel_id": failed["target"]}
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items() if k != "type"}
    action: act.Action = getattr(act, value["type"])(**fields)
    return action


def verdict_of(record: CallRecord) -> Verdict | None:
    if record.outcome is None or record.reason is None:
        return None
    return (record.outcome.value, record.reason.value, record.short)


@dataclass
class Journal:
    header: Json = field(default_factory=dict)
    entries: list[tuple[str, Json]] = field(default_factory=list)
    verdicts: dict[str, Verdict] = field(default_factory=dict)

    @property
    def events(self) -> int:
        return sum(1 for kind, _ in self.entries if kind == "e")

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(path, "wt", compresslevel=9, encoding="utf-8") as out:
            out.write(json.dumps({"header": self.header}, separators=(",", ":")) + "\n")
            for kind, payload in self.entries:
                out.write(json.dumps({kind: payload}, separators=(",", ":")) + "\n")
            verdicts = {k: list(v) for k, v in self.verdicts.items()}
            out.write(json.dumps({"verdicts": verdicts}, separators=(",", ":")) + "\n")

    @classmethod
    def read(cls, path: Path) -> Journal:
        journal = cls()
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            for line in lines:
                item = json.loads(line)
                if "header" in item:
                    journal.header = item["header"]
                elif "verdicts" in item:
                    journal.verdicts = {k: (v[0], v[1], bool(v[2])) for k, v in item["verdicts"].items()}
                else:
                    ((kind, payload),) = item.items()
                    journal.entries.append((kind, payload))
        return journal
