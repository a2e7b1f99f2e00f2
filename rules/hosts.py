"""A host as the network sees it, however a command spelled it.

    >>> canonical_host("2852039166"), canonical_host("0xa9.0xfe.0xa9.0xfe")
    ('169.254.169.254', '169.254.169.254')
    >>> canonical_host("[::ffff:a9fe:a9fe]"), canonical_host("169.254.169.254.nip.io")
    ('169.254.169.254', '169.254.169.254')
    >>> canonical_host("Metadata.Google.Internal.")
    'metadata.google.internal'

The C resolver (inet_aton) reads an IPv4 address in decimal, octal or hex, in
one to four parts; an IPv4-mapped IPv6 address reaches the IPv4 host; and
wildcard-DNS services answer a name that embeds an address with that address.
Rules name hosts in the canonical form, so each spelling meets them.
"""

from __future__ import annotations

import ipaddress
import re

# Public DNS services that resolve NAME.A.B.C.D.service (or A-B-C-D.service) to A.B.C.D.
_WILDCARD_DNS = ("nip.io", "sslip.io", "xip.io", "traefik.me", "backname.io", "localtest.me")
_EMBEDDED = re.compile(r"(?:^|[.-])(\d{1,3})[.-](\d{1,3})[.-](\d{1,3})[.-](\d{1,3})$")
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")


def canonical_host(host: str) -> str:
    """The host's canonical spelling: an address in its usual form, a name in lower case."""
    text = host.strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.rstrip(".") or text
    address = _inet_aton(text)
    if address is not None:
        return address
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return _wildcard_dns(text) or text
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _inet_aton(text: str) -> str | None:
    """inet_aton's reading: 1 to 4 parts, each decimal, 0-octal or 0x-hex; the last part
    fills the remaining bytes."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4 or not all(_NUMBER.fullmatch(p) for p in parts):
        return None
    try:
        values = [int(p, 0) if not re.fullmatch(r"0[0-7]+", p) else int(p, 8) for p in parts]
    except ValueError:
        return None
    *leading, last = values
    if any(v > 255 for v in leading) or last >= 256 ** (4 - len(leading)):
        return None
    number = 0
    for value in leading:
        number = number * 256 + value
    number = number * 256 ** (4 - len(leading)) + last
    return str(ipaddress.IPv4Address(number))


def _wildcard_dns(name: str) -> str | None:
    for service in _WILDCARD_DNS:
        if name.endswith("." + service):
            match = _EMBEDDED.search(name[: -len(service) - 1])
            if match and all(int(g) <= 255 for g in match.groups()):
                return ".".join(str(int(g)) for g in match.groups())
    return None
