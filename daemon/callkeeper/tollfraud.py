"""Toll-fraud rules for every number callkeeper dials out to: the dialer's contacts, `external:`
destinations and users' backup numbers. One rule, used by the dialer and by the config check."""

from __future__ import annotations

import phonenumbers
from phonenumbers import PhoneNumberType

# Numbers that cost the caller (premium rate, shared cost), that forward anywhere the owner likes
# (personal numbers, UAN), that reach a voicemail box, or whose type is not known.
REFUSED_TYPES = {
    PhoneNumberType.PREMIUM_RATE: "premium-rate",
    PhoneNumberType.SHARED_COST: "shared-cost",
    PhoneNumberType.PERSONAL_NUMBER: "personal (forwarding)",
    PhoneNumberType.UAN: "universal access (UAN)",
    PhoneNumberType.VOICEMAIL: "voicemail-access",
    PhoneNumberType.UNKNOWN: "unknown-type",
}


def dial_out_refusal(number: str) -> str | None:
    """Why `number` (E.164) must never be dialled, or None if it may be."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return f"{number} is not a valid E.164 number"
    if not phonenumbers.is_valid_number(parsed):
        return f"{number} is not a valid E.164 number"
    kind = REFUSED_TYPES.get(phonenumbers.number_type(parsed))
    if kind is not None:
        return f"{number} is a {kind} number: callkeeper never dials those (toll fraud)"
    return None
