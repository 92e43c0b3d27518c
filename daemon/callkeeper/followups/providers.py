"""Delivery over the wire: SMS providers (Twilio, a webhook, Asterisk's SIP MESSAGE) and signed webhooks.

Every send carries the outbox item's idempotency key, so a send repeated after a crash is recognised by
the receiver. Credentials go only into headers; errors name a status and the receiver's message, never a
URL, a header or a secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from callkeeper.ari.errors import AriError, is_retryable
from callkeeper.ari.rest import AriRestClient
from callkeeper.config.model import Secret, SmsProvider, SmsProviderType

TWILIO_BASE_URL = "https://api.twilio.com"
SIGNATURE_HEADER = "X-Callkeeper-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
TWILIO_IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
# 408 and 429 say "not now"; any other 4xx is a request that stays wrong however often it is repeated.
RETRYABLE_CLIENT_STATUSES = frozenset({408, 429})
ERROR_TEXT_LIMIT = 200


class DeliveryError(Exception):
    """A send that did not go through. `retryable`: the same request may succeed later."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class SmsMessage:
    to: str
    sender: str
    body: str
    call_id: str | None
    idempotency_key: str


class SmsSender(Protocol):
    async def send(self, message: SmsMessage) -> str | None:
        """Hand the text to the provider; returns the provider's message id if it gives one."""


def signature(secret: str, body: bytes) -> str:
    """The `X-Callkeeper-Signature` value: `sha256=` and the hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _plain(value: str | Secret) -> str:
    return value.value if isinstance(value, Secret) else value


def _error_text(status: int, content: bytes) -> str:
    """`HTTP 400: <the receiver's message>`, short. Twilio and most APIs put it under `message`."""
    text = content.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        text = data["message"]
    text = " ".join(text.split())[:ERROR_TEXT_LIMIT]
    return f"HTTP {status}: {text}" if text else f"HTTP {status}"


async def _post(
    session: aiohttp.ClientSession,
    url: str,
    *,
    data: bytes | Mapping[str, str],
    headers: Mapping[str, str],
    timeout_seconds: float,
) -> bytes:
    """POST and return the reply body of a 2xx; anything else raises `DeliveryError`."""
    try:
        async with session.post(
            url, data=data, headers=dict(headers), timeout=aiohttp.ClientTimeout(total=timeout_seconds)
        ) as response:
            content = await response.read()
            status = response.status
    except (OSError, TimeoutError, aiohttp.ClientError) as error:
        # The exception text may carry the URL (a webhook's query may hold a token): only its type.
        raise DeliveryError(f"no response: {type(error).__name__}", retryable=True) from error
    if 200 <= status < 300:
        return content
    retryable = status >= 500 or status in RETRYABLE_CLIENT_STATUSES
    raise DeliveryError(_error_text(status, content), retryable=retryable)


class TwilioSender:
    """`POST {base_url}/2010-04-01/Accounts/{sid}/Messages.json`; Twilio drops a repeated idempotency
    token instead of sending the text twice."""

    def __init__(self, provider: SmsProvider, session: aiohttp.ClientSession, timeout: float) -> None:
        settings = provider.settings
        self._sid = _plain(settings["account_sid"])
        base = _plain(settings.get("base_url", TWILIO_BASE_URL)).rstrip("/")
        self._url = f"{base}/2010-04-01/Accounts/{self._sid}/Messages.json"
        credentials = f"{self._sid}:{_plain(settings['auth_token'])}".encode()
        self._authorization = "Basic " + base64.b64encode(credentials).decode("ascii")
        self._session = session
        self._timeout = timeout

    async def send(self, message: SmsMessage) -> str | None:
        content = await _post(
            self._session,
            self._url,
            data={"To": message.to, "From": message.sender, "Body": message.body},
            headers={
                "Authorization": self._authorization,
                TWILIO_IDEMPOTENCY_HEADER: message.idempotency_key,
            },
            timeout_seconds=self._timeout,
        )
        reply = _json_object(content)
        sid = reply.get("sid")
        return sid if isinstance(sid, str) else None


class WebhookSmsSender:
    """Hands the text to an operator's own gateway as signed JSON."""

    def __init__(self, provider: SmsProvider, session: aiohttp.ClientSession, timeout: float) -> None:
        self._url = _plain(provider.settings["url"])
        secret = provider.settings.get("secret")
        self._secret = None if secret is None else _plain(secret)
        self._session = session
        self._timeout = timeout

    async def send(self, message: SmsMessage) -> str | None:
        body = dump_body(
            {
                "to": message.to,
                "from": message.sender,
                "body": message.body,
                "call_id": message.call_id,
                "idempotency_key": message.idempotency_key,
            }
        )
        content = await post_signed(
            self._session,
            self._url,
            body,
            secret=self._secret,
            idempotency_key=message.idempotency_key,
            timeout_seconds=self._timeout,
        )
        reply = _json_object(content)
        provider_id = reply.get("id")
        return provider_id if isinstance(provider_id, str) else None


class AsteriskSender:
    """SIP MESSAGE through ARI `PUT /endpoints/sendMessage`. ARI has no idempotency key: a send whose
    reply was lost in a crash may reach the phone twice."""

    def __init__(self, provider: SmsProvider, ari: AriRestClient | None) -> None:
        self._endpoint = _plain(provider.settings["endpoint"])
        self._ari = ari

    async def send(self, message: SmsMessage) -> str | None:
        if self._ari is None:
            raise DeliveryError("the asterisk sms provider needs the ARI client", retryable=False)
        to = self._endpoint.replace("{to}", message.to).replace("{from}", message.sender)
        try:
            await self._ari.send_message(to, message.sender, message.body)
        except AriError as error:
            raise DeliveryError(str(error), retryable=is_retryable(error)) from error
        return None


def sms_sender(
    provider: SmsProvider, session: aiohttp.ClientSession, ari: AriRestClient | None, timeout: float
) -> SmsSender:
    if provider.type is SmsProviderType.TWILIO:
        return TwilioSender(provider, session, timeout)
    if provider.type is SmsProviderType.WEBHOOK:
        return WebhookSmsSender(provider, session, timeout)
    return AsteriskSender(provider, ari)


async def post_signed(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    *,
    secret: str | None,
    idempotency_key: str,
    timeout_seconds: float,
) -> bytes:
    """POST a JSON body with `Idempotency-Key` and, given a secret, `X-Callkeeper-Signature`."""
    headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: idempotency_key}
    if secret is not None:
        headers[SIGNATURE_HEADER] = signature(secret, body)
    return await _post(session, url, data=body, headers=headers, timeout_seconds=timeout_seconds)


def dump_body(value: dict[str, Any]) -> bytes:
    """The exact bytes a JSON body is sent (and signed) as: the same on every retry."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _json_object(content: bytes) -> dict[str, Any]:
    try:
        data = json.loads(content) if content else None
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
