"""The OAuth 2.0 device authorization grant (RFC 8628): an ID token for a person at a terminal.

`bastion login --device` asks the issuer for a device code, prints the URL
and the code the person enters in a browser, and polls the token endpoint
until the person has signed in (or refused, or the code expired). The ID
token it returns is then exchanged exactly like one from --token-file.

Every URL obeys the issuer rule (https, plain http only on loopback); every
response is size-limited; the polling loop is bounded by the code's expiry.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bastion.errors import BastionError
from bastion.identity.jwks import check_issuer_url, http_fetch

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
MAX_RESPONSE = 64 * 1024
TIMEOUT = 15.0
MAX_EXPIRES = 30 * 60
DEFAULT_INTERVAL = 5
MAX_INTERVAL = 60
SLOW_DOWN_STEP = 5  # seconds RFC 8628 section 3.5 adds on `slow_down`


class DeviceLoginFailed(BastionError):
    """The issuer refused, the person declined, or the code expired."""

    exit_code = 6


@dataclass(frozen=True)
class DeviceCode:
    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: int
    interval: int


Post = Callable[[str, dict[str, str]], tuple[int, dict[str, Any]]]


def post_form(url: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """POST a form; (status, JSON object). Error statuses carry JSON too (RFC 6749 5.2)."""
    check_issuer_url(url)
    request = urllib.request.Request(
        url,
        data=urllib.parse.urlencode(form).encode(),
        headers={"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
            check_issuer_url(response.geturl())
            status, body = response.status, response.read(MAX_RESPONSE + 1)
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(MAX_RESPONSE + 1)
    except (OSError, ValueError) as exc:
        raise DeviceLoginFailed(f"cannot reach {url}: {exc}") from None
    if len(body) > MAX_RESPONSE:
        raise DeviceLoginFailed(f"{url} answered with more than {MAX_RESPONSE} bytes")
    try:
        data = json.loads(body)
    except ValueError:
        raise DeviceLoginFailed(f"{url} answered with something other than JSON") from None
    if not isinstance(data, dict):
        raise DeviceLoginFailed(f"{url} answered with JSON that is not an object")
    return status, data


def endpoints(
    issuer: str, fetch: Callable[[str], tuple[bytes, str | None]] = http_fetch
) -> tuple[str, str]:
    """(device_authorization_endpoint, token_endpoint) from the discovery document."""
    check_issuer_url(issuer)
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    body, _ = fetch(url)
    try:
        document = json.loads(body)
    except ValueError:
        raise DeviceLoginFailed(f"{url} is not JSON") from None
    if not isinstance(document, dict):
        raise DeviceLoginFailed(f"{url} is not a JSON object")
    device = document.get("device_authorization_endpoint")
    token = document.get("token_endpoint")
    if not isinstance(device, str) or not isinstance(token, str):
        raise DeviceLoginFailed(f"issuer {issuer} does not offer the device authorization grant")
    check_issuer_url(device)
    check_issuer_url(token)
    return device, token


def request_code(url: str, client_id: str, scope: str, post: Post = post_form) -> DeviceCode:
    status, data = post(url, {"client_id": client_id, "scope": scope})
    if status != 200:
        raise DeviceLoginFailed(f"device authorization refused: {_oauth_error(data)}")
    try:
        code = DeviceCode(
            device_code=_text(data, "device_code"),
            user_code=_text(data, "user_code", 64),
            verification_uri=_text(data, "verification_uri"),
            verification_uri_complete=(
                _text(data, "verification_uri_complete")
                if "verification_uri_complete" in data
                else None
            ),
            expires_in=min(MAX_EXPIRES, _number(data, "expires_in", None)),
            interval=min(MAX_INTERVAL, max(1, _number(data, "interval", DEFAULT_INTERVAL))),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DeviceLoginFailed(f"malformed device authorization response: {exc}") from None
    return code


def poll_for_token(
    url: str,
    client_id: str,
    code: DeviceCode,
    *,
    post: Post = post_form,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Poll until the person has signed in; returns the ID token."""
    deadline = clock() + code.expires_in
    interval = code.interval
    while True:
        sleep(interval)
        if clock() > deadline:
            raise DeviceLoginFailed("the device code expired before sign-in was completed")
        status, data = post(
            url, {"grant_type": GRANT_TYPE, "device_code": code.device_code, "client_id": client_id}
        )
        if status == 200:
            token = data.get("id_token")
            if not isinstance(token, str) or not token:
                raise DeviceLoginFailed("the issuer returned no id_token (is `openid` in scope?)")
            return token
        error = data.get("error")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval = min(MAX_INTERVAL, interval + SLOW_DOWN_STEP)
            continue
        if error == "access_denied":
            raise DeviceLoginFailed("sign-in was declined")
        if error == "expired_token":
            raise DeviceLoginFailed("the device code expired before sign-in was completed")
        raise DeviceLoginFailed(f"token request refused: {_oauth_error(data)}")


def device_login(
    issuer: str,
    client_id: str,
    *,
    say: Callable[[str], None],
    scope: str = "openid",
    post: Post = post_form,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    device_url, token_url = endpoints(issuer)
    code = request_code(device_url, client_id, scope, post)
    if code.verification_uri_complete:
        say(f"To sign in, open {code.verification_uri_complete}")
        say(f"(or open {code.verification_uri} and enter the code {code.user_code})")
    else:
        say(f"To sign in, open {code.verification_uri} and enter the code {code.user_code}")
    say(f"Waiting up to {code.expires_in // 60} min for sign-in...")
    return poll_for_token(token_url, client_id, code, post=post, sleep=sleep)


def _text(data: dict[str, Any], key: str, limit: int = 4096) -> str:
    value = data[key]
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ValueError(f"{key} must be a string of 1-{limit} characters")
    if not value.isprintable():
        raise ValueError(f"{key} holds control characters")
    return value


def _number(data: dict[str, Any], key: str, default: int | None) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{key} must be a positive whole number")
    return value


def _oauth_error(data: dict[str, Any]) -> str:
    error = str(data.get("error", "unknown error"))[:100]
    description = data.get("error_description")
    text = f"{error}: {str(description)[:200]}" if description else error
    return "".join(ch if ch.isprintable() else "?" for ch in text)
