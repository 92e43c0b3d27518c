"""Password hashes for the web sign-in: scrypt (memory-hard), checked in constant time.

The stored form is `scrypt$N$r$p$SALT$HASH` (salt and hash in unpadded base64url), so the cost can be
raised later without invalidating the hashes already in config files.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets

SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
# Above the 128 * N * r * p bytes scrypt needs (32 MiB at the defaults), with room for a raised N.
MAX_MEMORY = 256 * 1024 * 1024
MIN_LOG2_N = 14

HASH_FORMAT = re.compile(r"scrypt\$([0-9]+)\$([0-9]+)\$([0-9]+)\$([A-Za-z0-9_-]{16,})\$([A-Za-z0-9_-]{32,})")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    salt = secrets.token_bytes(SALT_BYTES)
    derived = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=MAX_MEMORY, dklen=HASH_BYTES)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(derived)}"


def hash_problem(encoded: str) -> str | None:
    """Why `encoded` is not a usable hash from `callkeeper hash-password`, or None when it is."""
    match = HASH_FORMAT.fullmatch(encoded)
    if match is None:
        return "not a hash from `callkeeper hash-password` (scrypt$N$r$p$SALT$HASH)"
    n, r, p = (int(match.group(index)) for index in (1, 2, 3))
    if n < 2**MIN_LOG2_N or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16:
        return (
            f"scrypt cost too low or invalid (N a power of two of at least 2^{MIN_LOG2_N}, r 1..32, p 1..16)"
        )
    if 128 * n * r * p > MAX_MEMORY:
        return "scrypt cost needs more memory than callkeeper allows (256 MiB)"
    return None


def verify_password(password: str, encoded: str) -> bool:
    """True when `password` matches; a malformed hash never matches. Takes ~0.1 s: run it off the loop."""
    if hash_problem(encoded) is not None:
        return False
    _, n, r, p, salt, expected = encoded.split("$")
    derived = hashlib.scrypt(
        password.encode(),
        salt=_unb64(salt),
        n=int(n),
        r=int(r),
        p=int(p),
        maxmem=MAX_MEMORY,
        dklen=len(_unb64(expected)),
    )
    return hmac.compare_digest(derived, _unb64(expected))


@functools.cache
def decoy_hash() -> str:
    """Checked when the user name is unknown, so a wrong name takes as long as a wrong password."""
    return hash_password(secrets.token_urlsafe(16))
