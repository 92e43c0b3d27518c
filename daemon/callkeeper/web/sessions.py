"""Web sessions, CSRF tokens and the brake on wrong passwords.

A session is a signed cookie, not a row in the store: every daemon that shares the config (and so
`http.session_secret`) accepts it, with SQLite or PostgreSQL alike, and a page load costs no store
write. The cookie carries the user, a random session id, its expiry, and a fingerprint of the user's
password hash, so changing a password (or removing the user) ends that user's sessions everywhere.
Signing out deletes the cookie in the browser; a copy stolen before that stays valid until it expires
(at most `SESSION_SECONDS`), which is the price of needing no shared session table.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

SESSION_SECONDS = 12 * 3600
"""A working day: the page stays open from the morning on without asking again."""


def session_key(session_secret: str | None, api_token: str | None) -> bytes:
    """The key that signs session cookies: `http.session_secret`, else one derived from the API token
    (hosts that share a config share both), else a random one: sessions then end when the daemon stops."""
    if session_secret:
        return hashlib.sha256(b"callkeeper web session\0" + session_secret.encode()).digest()
    if api_token:
        return hmac.new(api_token.encode(), b"callkeeper web session", hashlib.sha256).digest()
    return secrets.token_bytes(32)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def password_fingerprint(password_hash: str) -> str:
    return _b64(hashlib.sha256(password_hash.encode()).digest()[:9])


@dataclass(frozen=True, slots=True)
class Session:
    user: str
    session_id: str
    expires_at: float
    fingerprint: str


class SessionSigner:
    """Makes and checks session cookies and the CSRF tokens bound to them."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, purpose: str, data: str) -> str:
        return _b64(hmac.new(self._key, f"{purpose}\0{data}".encode(), hashlib.sha256).digest())

    def issue(self, user: str, password_hash: str, now: float | None = None) -> tuple[Session, str]:
        """A new session for `user` and its cookie value."""
        now = time.time() if now is None else now
        session = Session(
            user, secrets.token_urlsafe(16), now + SESSION_SECONDS, password_fingerprint(password_hash)
        )
        payload = _b64(
            json.dumps(
                {
                    "u": session.user,
                    "s": session.session_id,
                    "e": int(session.expires_at),
                    "f": session.fingerprint,
                },
                separators=(",", ":"),
            ).encode()
        )
        return session, f"{payload}.{self._mac('session', payload)}"

    def read(self, cookie: str, now: float | None = None) -> Session | None:
        """The session of a cookie whose signature holds and that has not expired; else None."""
        payload, dot, mac = cookie.partition(".")
        if not dot or not hmac.compare_digest(mac.encode(), self._mac("session", payload).encode()):
            return None
        try:
            data = json.loads(_unb64(payload))
            session = Session(str(data["u"]), str(data["s"]), float(data["e"]), str(data["f"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires_at <= (time.time() if now is None else now):
            return None
        return session

    def csrf_token(self, session_id: str) -> str:
        """The token every form and state-changing fetch of this session must send back."""
        return self._mac("csrf", session_id)

    def csrf_valid(self, session_id: str, token: str) -> bool:
        return hmac.compare_digest(token.encode(), self.csrf_token(session_id).encode())


@dataclass(frozen=True, slots=True)
class BrakeRule:
    failures: int
    window_seconds: float


class LoginBrake:
    """Refuses sign-ins for a while after repeated wrong passwords, per user name and per address.

    After `per_name.failures` wrong passwords for one name within the window, that name is refused
    until the oldest of them leaves the window (an address gets a higher allowance: several people may
    sign in from behind one proxy). Counts live in this daemon's memory: with several hosts, each
    brakes on its own.
    """

    MAX_KEYS = 10_000

    def __init__(
        self,
        per_name: BrakeRule = BrakeRule(5, 15 * 60),
        per_address: BrakeRule = BrakeRule(30, 15 * 60),
    ) -> None:
        self._rules = {"name": per_name, "address": per_address}
        self._failures: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()

    def _keys(self, name: str, address: str) -> tuple[tuple[str, str], tuple[str, str]]:
        return ("name", name.casefold()), ("address", address)

    def wait_seconds(self, name: str, address: str, now: float | None = None) -> float:
        """0 when a sign-in may be tried now, else how long until it may."""
        now = time.monotonic() if now is None else now
        wait = 0.0
        for key in self._keys(name, address):
            rule = self._rules[key[0]]
            times = self._failures.get(key)
            if times is None:
                continue
            while times and times[0] <= now - rule.window_seconds:
                times.popleft()
            if len(times) >= rule.failures:
                wait = max(wait, times[0] + rule.window_seconds - now)
        return wait

    def failed(self, name: str, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for key in self._keys(name, address):
            times = self._failures.pop(key, None) or deque(maxlen=self._rules[key[0]].failures)
            times.append(now)
            self._failures[key] = times
        while len(self._failures) > self.MAX_KEYS:
            self._failures.popitem(last=False)

    def succeeded(self, name: str, address: str) -> None:
        """The name's count starts again; the address gets back the attempt that proved right."""
        self._failures.pop(("name", name.casefold()), None)
        times = self._failures.get(("address", address))
        if times:
            times.pop()
