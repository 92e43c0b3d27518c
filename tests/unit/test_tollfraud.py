"""Toll fraud: premium-rate, shared-cost, personal, UAN, voicemail-access and unknown-type numbers are
never dialled, neither by the dialer nor through the config (`external:` destinations, backup numbers)."""

from __future__ import annotations

import pytest

from callkeeper.config.model import Destination, DestinationKind, Line
from callkeeper.service.control import dialer_refusal
from callkeeper.tollfraud import dial_out_refusal
from tests.unit.test_config_loader import ASTERISK, ONE_LINE, line_with, problems

REFUSED = [
    ("+19005550123", "premium-rate"),  # US 900
    ("+15005550123", "personal (forwarding)"),  # US 500
    ("+449098790123", "premium-rate"),  # UK 909
    ("+447012345678", "personal (forwarding)"),  # UK 70
    ("+448432345678", "premium-rate"),  # UK 0843
    ("+33884012345", "shared-cost"),  # FR 08 84
    ("+49177991234567", "voicemail-access"),  # DE mobile voicemail
    ("+445512345678", "universal access (UAN)"),  # UK 055
]


@pytest.mark.parametrize(("number", "kind"), REFUSED)
def test_refused_number_types(number: str, kind: str) -> None:
    refusal = f"{number} is a {kind} number: callkeeper never dials those (toll fraud)"
    assert dial_out_refusal(number) == refusal


@pytest.mark.parametrize("number", ["+14155550123", "+447911123456", "+4930123456", "+18005551234"])
def test_ordinary_numbers_may_be_dialled(number: str) -> None:
    assert dial_out_refusal(number) is None


def test_invalid_numbers_are_refused() -> None:
    assert dial_out_refusal("+1555") == "+1555 is not a valid E.164 number"
    assert dial_out_refusal("not a number") == "not a number is not a valid E.164 number"


def test_the_dialer_refuses_premium_numbers_of_the_lines_own_country() -> None:
    line = Line("main", ("+12125550100",), Destination(DestinationKind.VOICEMAIL))
    assert dialer_refusal("+14155550123", line) is None
    assert dialer_refusal("+19005550123", line) == (
        "+19005550123 is a premium-rate number: callkeeper never dials those (toll fraud)"
    )
    assert dialer_refusal("+15005550123", line) is not None
    assert dialer_refusal("+442079460000", line) == "+442079460000 is not a number in this line's country"


def test_check_config_refuses_premium_external_destinations_and_backup_numbers() -> None:
    [route] = problems(line_with('numbers: ["100"]\nroute: "external:+19005550123"\n'))
    assert (route.path, route.line) == ("lines.main.route", 7)
    assert route.message == "+19005550123 is a premium-rate number: callkeeper never dials those (toll fraud)"
    [backup] = problems(
        ASTERISK + 'users: {a: {endpoint: PJSIP/a, backup_number: "+447012345678"}}\n' + ONE_LINE
    )
    assert (backup.path, backup.message) == (
        "users.a.backup_number",
        "+447012345678 is a personal (forwarding) number: callkeeper never dials those (toll fraud)",
    )
