"""`[recordings]` in bastion.toml -> RecordingsConfig, validated once.

[recordings]
url = "s3://bucket/prefix"          # or "local" (the default: <state>/recordings)
endpoint = "http://127.0.0.1:7480"  # else $AWS_ENDPOINT_URL_S3 / $AWS_ENDPOINT_URL
region = "us-east-1"                # else $AWS_REGION / $AWS_DEFAULT_REGION
access_key_id = "..."               # else $AWS_ACCESS_KEY_ID
secret_access_key = "..."           # else $AWS_SECRET_ACCESS_KEY
on_failure = "continue"             # or "close": a failed recording ends the session
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bastion.errors import ConfigError

ON_FAILURE = ("continue", "close")
_NUMBERS: dict[str, tuple[float, float]] = {
    "upload_interval": (0.05, 60.0),
    "complete_interval": (0.2, 3600.0),
    "abandon_after": (1.0, 86400.0),
}
_KEYS = {
    "url",
    "endpoint",
    "region",
    "access_key_id",
    "secret_access_key",
    "allow_http",
    "spool",
    "on_failure",
    "max_input_bytes",
    *_NUMBERS,
}


class Secret(str):
    """A credential: compares and encodes as its value, prints as ***."""

    def __repr__(self) -> str:
        return "'***'"


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # no leading or trailing slash; may be ""

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


@dataclass(frozen=True)
class RecordingsConfig:
    url: str = "local"
    endpoint: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: Secret | None = None
    allow_http: bool = False  # http:// endpoints are accepted on loopback only unless set
    spool: str | None = None  # the local spool dir for S3 (default <state>/recordings)
    on_failure: str = "continue"
    max_input_bytes: int = 1 << 20  # exec stdin recorded per session; past it only counted
    upload_interval: float = 0.5  # seconds between uploads of a live spool's new lines
    complete_interval: float = 5.0  # seconds between completer passes
    abandon_after: float = 60.0  # a node silent this long has abandoned its recordings

    @property
    def s3(self) -> S3Location | None:
        return parse_s3_url(self.url) if self.url.startswith("s3://") else None

    def s3_settings(self) -> dict[str, str]:
        """Endpoint, region and keys: the config's, else the standard AWS variables."""
        env = os.environ
        found = {
            "endpoint": self.endpoint
            or env.get("AWS_ENDPOINT_URL_S3")
            or env.get("AWS_ENDPOINT_URL"),
            "region": self.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
            "access_key_id": self.access_key_id or env.get("AWS_ACCESS_KEY_ID"),
            "secret_access_key": self.secret_access_key or env.get("AWS_SECRET_ACCESS_KEY"),
            "session_token": env.get("AWS_SESSION_TOKEN"),
        }
        settings = {key: value for key, value in found.items() if value}
        settings.setdefault("region", "us-east-1")
        endpoint = settings.get("endpoint")
        if endpoint:
            check_endpoint(endpoint, allow_http=self.allow_http)
        return settings


def parse_s3_url(url: str) -> S3Location:
    parts = urlsplit(url)
    bucket = parts.netloc
    if parts.scheme != "s3" or not bucket or parts.query or parts.fragment:
        raise ConfigError(f"recordings.url {url!r}: expected s3://BUCKET/PREFIX")
    if not 3 <= len(bucket) <= 63 or not all(c.isalnum() or c in "-." for c in bucket):
        raise ConfigError(f"recordings.url {url!r}: {bucket!r} is not a valid bucket name")
    prefix = parts.path.strip("/")
    if ".." in prefix.split("/") or len(prefix) > 512:
        raise ConfigError(f"recordings.url {url!r}: bad prefix")
    return S3Location(bucket, prefix)


def check_endpoint(endpoint: str, *, allow_http: bool) -> None:
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"recordings endpoint {endpoint!r}: expected http(s)://HOST[:PORT]")
    if parts.scheme == "http" and not allow_http and not _loopback(parts.hostname):
        raise ConfigError(
            f"recordings endpoint {endpoint!r}: plain http only on a loopback address"
            " (or set recordings.allow_http = true)"
        )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_recordings(table: Any, where: str, warnings: list[str]) -> RecordingsConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [recordings] must be a table")
    warnings += [
        f"{where}: unknown key recordings.{key} ignored" for key in table if key not in _KEYS
    ]
    url = table.get("url", "local")
    if not isinstance(url, str) or not (url == "local" or url.startswith("s3://")):
        raise ConfigError(f'{where}: recordings.url must be "local" or "s3://BUCKET/PREFIX"')
    if url.startswith("s3://"):
        try:
            parse_s3_url(url)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    strings = {}
    for key in ("endpoint", "region", "access_key_id", "secret_access_key", "spool"):
        value = table.get(key)
        if value is not None and (not isinstance(value, str) or not value or len(value) > 1024):
            raise ConfigError(f"{where}: recordings.{key} must be a non-empty string")
        strings[key] = value
    allow_http = table.get("allow_http", False)
    if not isinstance(allow_http, bool):
        raise ConfigError(f"{where}: recordings.allow_http must be true or false")
    if strings["endpoint"]:
        try:
            check_endpoint(strings["endpoint"], allow_http=allow_http)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    on_failure = table.get("on_failure", "continue")
    if on_failure not in ON_FAILURE:
        raise ConfigError(f'{where}: recordings.on_failure must be "continue" or "close"')
    max_input = table.get("max_input_bytes", 1 << 20)
    if (
        isinstance(max_input, bool)
        or not isinstance(max_input, int)
        or not 0 <= max_input <= 1 << 34
    ):
        raise ConfigError(f"{where}: recordings.max_input_bytes must be a whole number of bytes")
    numbers = {}
    for key, (low, high) in _NUMBERS.items():
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{where}: recordings.{key} must be a number of seconds")
            if not low <= value <= high:
                raise ConfigError(f"{where}: recordings.{key} must be {low}-{high} seconds")
            numbers[key] = float(value)
    secret = strings.pop("secret_access_key")
    return RecordingsConfig(
        url=url,
        secret_access_key=Secret(secret) if secret else None,
        allow_http=allow_http,
        on_failure=on_failure,
        max_input_bytes=max_input,
        **strings,
        **numbers,
    )
