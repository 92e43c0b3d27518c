"""Credentials out of anything printed: every message that may quote a URL or a DSN from the config
(check-config, `run`, `reload_rejected`, store errors) passes through `redact`."""

from __future__ import annotations

import re

# `scheme://user:password@host`: the user-info runs to the last `@` before the path.
_URL_USERINFO = re.compile(r"//([^/?#\s]*)@")
# `user:password@host` without a scheme, as a malformed URL may be written.
_BARE_USERINFO = re.compile(r"""(?<![\w/.:@-])([^\s/@:'"]+:[^\s/'"]*)@""")
_SECRET_PARAMETER = re.compile(
    r"([?&](?:password|sslpassword|token|secret|auth_token|api_key)=)[^&#\s]*", re.IGNORECASE
)


def _hidden(userinfo: str) -> str:
    """The user name stays (it tells which account); a password, or a lone token, goes."""
    user, colon, _ = userinfo.partition(":")
    return f"{user}:***" if colon else "***"


def redact(text: str) -> str:
    """`text` with the password (or token) in the user-info of every URL in it replaced by `***`,
    and secret query parameters (`?password=...`) blanked."""
    text = _URL_USERINFO.sub(lambda match: f"//{_hidden(match.group(1))}@", text)
    text = _BARE_USERINFO.sub(lambda match: f"{_hidden(match.group(1))}@", text)
    return _SECRET_PARAMETER.sub(r"\1***", text)
