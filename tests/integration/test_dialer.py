"""The progressive dialer on real channels: a free user first, then the contact, bridged on answer."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from callkeeper.api.inbound_sms import twilio_signature
from tests.conftest import Sandbox
from tests.followups.fake_twilio import signed_by
from tests.integration.daemon import RunningDaemon, running_daemon
from tests.integration.sandbox_calls import wait_until
from tests.integration.sms_server import SmsServer

HOOK_SECRET = "crm-secret-0123"
CONFIG = {
    "users": {
        "alice": {"endpoint": "Local/alice-1-4@user-answer"},  # answers after 1 s, talks 4 s
        "bob": {"endpoint": "Local/bob@user-noanswer"},
    },
    "ring_groups": {"sales": {"members": ["alice"]}},
    "lines": {
        "main": {
            "numbers": ["+12125550177"],
            "route": "ring_group:sales",
            "followup_text": {
                "on": ["outbound_abandoned"],
                "provider": "twilio",
                "delay_seconds": 0,
                "messages": {
                    "outbound_abandoned": "We tried to reach you from {line_name}; call us at {line_number}."
                },
            },
        }
    },
}


@pytest.fixture(scope="module")
def daemon(
    sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory, sms: SmsServer
) -> Iterator[RunningDaemon]:
    config = {
        **CONFIG,
        "sms_providers": {"twilio": sms.provider()},
        "webhooks": [
            {
                "url": f"{sms.base_url}/hooks/crm",
                "secret": HOOK_SECRET,
                "events": ["call.started", "call.ended"],
            }
        ],
    }
    with running_daemon(sandbox, tmp_path_factory.mktemp("dialer"), config) as running:
        yield running


async def dial(daemon: RunningDaemon, contact: str, **who: str) -> tuple[int, dict[str, str]]:
    status, body = await daemon.api(
        "POST", "/api/v1/dialer/calls", json={"contact": contact, "line": "main", **who}
    )
    return status, body


async def test_contact_answers_and_talks_to_the_user(daemon: RunningDaemon) -> None:
    status, body = await dial(daemon, "+14155550100", ring_group="sales")
    assert status == 202, body
    record = await daemon.verdict(body["id"])
    assert (record["direction"], record["outcome"], record["answered_by"]) == (
        "outbound",
        "answered",
        "alice",
    )
    assert (record["caller"], record["dialed"]) == ("+12125550177", "+14155550100")
    assert [s["stage"] for s in record["steps"]] == ["dialer_user", "dialer_contact", "answered"]


async def test_busy_contact_is_abandoned_and_texted(daemon: RunningDaemon, sms: SmsServer) -> None:
    status, body = await dial(daemon, "+14155550199", user="alice")
    assert status == 202, body
    record = await daemon.verdict(body["id"])
    assert (record["outcome"], record["reason"]) == ("abandoned", "progressive_no_answer")
    await wait_until(lambda: sms.texts_to("+14155550199"), within=20, what="the follow-up text")
    assert sms.texts_to("+14155550199") == [
        {
            "To": "+14155550199",
            "From": "+12125550177",
            "Body": "We tried to reach you from main; call us at +12125550177.",
        }
    ]
    assert not sms.texts_to("+14155550100"), "an answered contact is not texted"
    await daemon.assert_nothing_left()


async def test_requests_the_dialer_refuses(daemon: RunningDaemon) -> None:
    assert (await dial(daemon, "+442079460000", user="alice"))[0] == 422  # another country: toll fraud guard
    status, refused = await dial(daemon, "+19005550123", user="alice")
    assert (status, refused["error"]) == (
        422,
        "+19005550123 is a premium-rate number: callkeeper never dials those (toll fraud)",
    )
    assert (await dial(daemon, "+14155550100", user="nobody"))[0] == 404
    status, _ = await daemon.api("PUT", "/api/v1/users/alice/presence", json={"presence": "away"})
    assert status == 200
    assert (await dial(daemon, "+14155550100", user="alice"))[0] == 409


async def test_stop_reply_opts_the_contact_out(daemon: RunningDaemon, sms: SmsServer) -> None:
    url = f"{daemon.base_url}/api/v1/sms/twilio/inbound"
    form = {"From": "+14155550299", "To": "+12125550177", "Body": "Stop.", "MessageSid": "SM0001"}
    signature = twilio_signature(sms.provider()["auth_token"], url, list(form.items()))
    async with aiohttp.ClientSession() as session:
        for status in (200, 409):  # a replay of the same message is refused
            async with session.post(url, data=form, headers={"X-Twilio-Signature": signature}) as response:
                assert response.status == status
    status, state = await daemon.api("GET", "/api/v1/opt-outs/%2B14155550299")
    assert (status, state["opted_out"], state["source"]) == (200, True, "sms:twilio")


async def test_call_ended_webhook_carries_the_signed_record(daemon: RunningDaemon, sms: SmsServer) -> None:
    status, _ = await daemon.api("PUT", "/api/v1/users/alice/presence", json={"presence": "available"})
    assert status == 200
    status, body = await dial(daemon, "+14155550100", user="alice")
    assert status == 202, body
    await daemon.verdict(body["id"])

    def delivered(event: str) -> list[tuple[str, dict[str, str], bytes]]:
        return [
            hook
            for hook in list(sms.twilio.hooks)
            if (json.loads(hook[2])["event"], json.loads(hook[2])["call"]["id"]) == (event, body["id"])
        ]

    await wait_until(lambda: delivered("call.ended"), within=20, what="the call.ended webhook")
    ((_, started_headers, started_raw),) = delivered("call.started")
    assert signed_by(HOOK_SECRET, started_headers, started_raw)
    assert json.loads(started_raw)["call"]["outcome"] is None
    ((_, headers, raw),) = delivered("call.ended")
    assert signed_by(HOOK_SECRET, headers, raw)
    sent = json.loads(raw)
    assert (sent["event"], sent["call"]["outcome"], sent["call"]["direction"]) == (
        "call.ended",
        "answered",
        "outbound",
    )


async def test_a_dialer_call_talking_when_the_daemon_dies_is_adopted_by_the_next(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    config = {
        "users": {"carol": {"endpoint": "Local/carol-1-25@user-answer"}},  # answers after 1 s, talks 25 s
        "lines": {"main": {"numbers": ["+12125550177"], "route": "voicemail"}},
    }
    with running_daemon(sandbox, tmp_path, config) as restarted:
        status, body = await dial(restarted, "+14155550100", user="carol")
        assert status == 202, body

        async def talking() -> bool:
            record = await restarted.call(body["id"])
            return bool(record and [s["stage"] for s in record["steps"]][-1:] == ["answered"])

        await wait_until(talking, within=20, what="carol and the contact talking")
        assert restarted.stop(signal.SIGKILL) == -signal.SIGKILL
        restarted.start()
        record = await restarted.verdict(body["id"], within=60)
        assert (record["outcome"], record["reason"], record["end_observed"]) == ("answered", "answered", True)
        assert [s["stage"] for s in record["steps"]] == [
            "dialer_user",
            "dialer_contact",
            "answered",
            "adopted",
        ]
        await restarted.assert_nothing_left()
