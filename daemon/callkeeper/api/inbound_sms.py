"""Replies to follow-up texts: STOP and START keywords from the SMS provider's inbound webhook,
verified with the provider's own signature (the provider cannot send our bearer token).

A signature alone can be replayed, so every message also has an id that is taken once: Twilio's
`MessageSid`, and for the webhook variant its signature, which covers a timestamp that must be recent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import string
import time
import unicodedata
from dataclasses import dataclass
from urllib.parse import parse_qsl

# The carriers' keywords (CTIA; Twilio's defaults plus OPTOUT and REVOKE).
OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"}
)
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES"})
TIMESTAMP_HEADER = "X-Callkeeper-Timestamp"
# How far the webhook variant's signed timestamp may be from our clock, either way.
TIMESTAMP_TOLERANCE_SECONDS = 300
_SURROUNDING = string.punctuation + "\u00a1\u00bf\u3001\u3002"  # also ¡ ¿ 、 。


def keyword(body: str) -> str:
    """The message as a keyword: full-width and other compatibility letters folded (NFKC), surrounding
    spaces and punctuation dropped, inner spaces collapsed, upper case: a full-width "Stop!" is "STOP"."""
    folded = unicodedata.normalize("NFKC", body)
    return " ".join(folded.split()).strip(_SURROUNDING + " ").upper()


@dataclass(frozen=True, slots=True)
class InboundText:
    sender: str
    body: str
    message_id: str

    @property
    def opt_out(self) -> bool | None:
        """True for STOP, False for START, None for anything else (a plain reply). An opt-out word
        also counts as the first word ("Stop texting me": revoking consent by any reasonable means);
        opting back in takes the word alone, so that "Yes, call me" opts nobody in."""
        message = keyword(self.body)
        if message in OPT_OUT_WORDS or keyword(message.partition(" ")[0]) in OPT_OUT_WORDS:
            return True
        if message in OPT_IN_WORDS:
            return False
        return None


def _same(expected: str, given: str) -> bool:
    """A constant-time comparison that takes any header text (compare_digest refuses non-ASCII str)."""
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogateescape"))


def twilio_signature(auth_token: str, url: str, form: list[tuple[str, str]]) -> str:
    """Twilio's X-Twilio-Signature: HMAC-SHA1 of the URL followed by the sorted form fields."""
    payload = url + "".join(key + value for key, value in sorted(form))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def read_twilio(auth_token: str, url: str, raw: bytes, signature: str) -> InboundText | None:
    """The text Twilio posted to `url` (the public URL Twilio was given), or None if the signature does
    not match or the form is incomplete."""
    try:
        form = parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=bool(raw))
    except (UnicodeDecodeError, ValueError):
        return None
    if not _same(twilio_signature(auth_token, url, form), signature):
        return None
    fields = dict(form)
    if not all(fields.get(key) for key in ("From", "MessageSid")) or "Body" not in fields:
        return None
    return InboundText(fields["From"], fields["Body"], fields["MessageSid"])


def webhook_signature(secret: str, raw: bytes, timestamp: str) -> str:
    """`sha256=` and the hex HMAC-SHA256 of `<timestamp>.<raw body>`."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256).hexdigest()


def read_webhook(
    secret: str, raw: bytes, signature: str, timestamp: str, now: float | None = None
) -> InboundText | None:
    """A JSON `{"from": ..., "body": ...}` signed with `webhook_signature` at `timestamp` (Unix seconds,
    the `X-Callkeeper-Timestamp` header), within `TIMESTAMP_TOLERANCE_SECONDS` of `now`."""
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return None
    if abs((time.time() if now is None else now) - int(timestamp)) > TIMESTAMP_TOLERANCE_SECONDS:
        return None
    expected = webhook_signature(secret, raw, timestamp)
    if not _same(expected, signature):
        return None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("from"), str)
        or not isinstance(data.get("body"), str)
    ):
        return None
    return InboundText(data["from"], data["body"], expected)
