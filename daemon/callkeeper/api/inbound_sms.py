"""Replies to follow-up texts: STOP and START keywords from the SMS provider's inbound webhook,
verified with the provider's own signature (the provider cannot send our bearer token)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from urllib.parse import parse_qsl

OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES"})


@dataclass(frozen=True, slots=True)
class InboundText:
    sender: str
    body: str

    @property
    def opt_out(self) -> bool | None:
        """True for STOP, False for START, None for anything else (a plain reply)."""
        word = self.body.strip().split(maxsplit=1)[0].upper() if self.body.strip() else ""
        if word in OPT_OUT_WORDS:
            return True
        if word in OPT_IN_WORDS:
            return False
        return None


def twilio_signature(auth_token: str, url: str, form: list[tuple[str, str]]) -> str:
    """Twilio's X-Twilio-Signature: HMAC-SHA1 of the URL followed by the sorted form fields."""
    payload = url + "".join(key + value for key, value in sorted(form))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def read_twilio(auth_token: str, url: str, raw: bytes, signature: str) -> InboundText | None:
    """The text Twilio posted, or None if the signature does not match or the form is incomplete."""
    try:
        form = parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=bool(raw))
    except (UnicodeDecodeError, ValueError):
        return None
    if not hmac.compare_digest(twilio_signature(auth_token, url, form), signature):
        return None
    fields = dict(form)
    if "From" not in fields or "Body" not in fields:
        return None
    return InboundText(fields["From"], fields["Body"])


def webhook_signature(secret: str, raw: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def read_webhook(secret: str, raw: bytes, signature: str) -> InboundText | None:
    """A JSON `{"from": ..., "body": ...}` signed like our own outgoing webhooks."""
    if not hmac.compare_digest(webhook_signature(secret, raw), signature):
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
    return InboundText(data["from"], data["body"])
