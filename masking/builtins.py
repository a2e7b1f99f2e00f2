"""Detectors written in Python: where a regex alone cannot say what a finding is.

Each function is called at one trigger hit (`at`: where the keyword starts,
`to`: where it ends) inside one line `buf[line_start:line_end]`, and yields
the Spans found there. The engine calls them only where their keyword occurs.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from masking import validators

# --- one finding ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Span:
    """One finding: [start, end) is the whole match (a cut may not fall inside it),
    [mask_start, mask_end) the part replaced by the marker."""

    start: int
    end: int
    mask_start: int
    mask_end: int
    name: str
    opens_block: bool = False
    rank: int = 0  # table order: the lower rank names a mask where findings overlap


Builtin = Callable[[str, bytes, int, int, int, int], Iterator[Span]]

# --- e-mail addresses -------------------------------------------------------------------

_LOCAL_PART = re.compile(rb"[A-Za-z0-9._%+\x80-\xff-]{1,64}\Z")
_LABEL = rb"(?:[A-Za-z0-9\x80-\xff](?:[A-Za-z0-9\x80-\xff-]{0,61}[A-Za-z0-9\x80-\xff])?)"
_DOMAIN = re.compile(
    rb"@((?:"
    + _LABEL
    + rb"\.){1,8}([A-Za-z]{2,24}|xn--[A-Za-z0-9-]{1,59}|(?:[\x80-\xff]{2,4}){2,12}))"
    rb"(?![A-Za-z0-9\x80-\xff:-]|\.[A-Za-z0-9])"
)
# File names such as icon@2x.png and systemd units such as getty@tty1.service look like
# addresses; these "top-level domains" are not mail.
_NOT_TLDS = frozenset(
    b"png jpg jpeg gif svg webp ico bmp pdf txt json yaml yml toml xml csv log conf cfg ini "
    b"lock tar gz tgz bz2 xz zip js mjs ts tsx jsx css html htm py pyc rb go rs java kt c h "
    b"cpp hpp so dylib dll exe bin sh bash md rst "
    b"service socket device mount automount swap target path timer slice scope".split()
)
_SYSTEMD = frozenset(
    b"service socket device mount automount swap target path timer slice scope".split()
)


def _not_mail(buf: bytes, start: int, domain: re.Match[bytes]) -> bool:
    """File names, systemd units (user@1000.service) and URL authorities are not addresses."""
    tld = domain.group(2).lower()
    labels = domain.group(1).count(b".")
    if tld in _SYSTEMD or (tld in _NOT_TLDS and labels == 1):
        return True
    scheme = buf.rfind(b"://", max(0, start - 300), start)
    return scheme >= 0 and not any(c in b" \t\r\n/\"'<>" for c in buf[scheme + 3 : start])


def email(
    name: str, buf: bytes, at: int, to: int, line_start: int, line_end: int
) -> Iterator[Span]:
    at = buf.rfind(b"@", at, to)  # the trigger holds one @, shortly before its end
    if at < 0:
        return
    domain = _DOMAIN.match(buf, at, line_end)
    if domain is None:
        return
    local = _LOCAL_PART.search(buf, max(line_start, at - 64), at)
    if local is None:
        return
    start = local.start()
    while start < at and buf[start] == 0x2E:  # a local part does not start with "."
        start += 1
    if start < at and not _not_mail(buf, start, domain):
        yield Span(start, domain.end(), start, domain.end(), name)


# --- private keys -----------------------------------------------------------------------

_KEY_NAME = rb"[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
PRIVATE_KEY = re.compile(
    rb"-----BEGIN" + _KEY_NAME + rb"(?:(?:\\[nr]|[A-Za-z0-9+/=: \t,.-]){0,12000}?"
    rb"(?P<end>-----END" + _KEY_NAME + rb")|(?:\\[nr]|[A-Za-z0-9+/=]){0,12000})"
)


def private_key(
    name: str, buf: bytes, at: int, to: int, line_start: int, line_end: int
) -> Iterator[Span]:
    """A BEGIN line (and what follows it on the line); with nothing after it, a block opens."""
    match = PRIVATE_KEY.match(buf, at, line_end)
    if match is None:
        return
    opens = match.group("end") is None and buf[match.end() : line_end].strip(b" \t\r") == b""
    yield Span(at, match.end(), at, match.end(), name, opens)


_B64_LINE = re.compile(rb"[A-Za-z0-9+/]{40,100}={0,2}")
_OPENSSH_MAGIC = b"openssh-key-v1\x00"
_PKCS8_OIDS = (
    b"\x2a\x86\x48\x86\xf7\x0d\x01\x01",  # rsaEncryption
    b"\x2a\x86\x48\xce\x3d\x02\x01",  # id-ecPublicKey
    b"\x2b\x65\x70",  # Ed25519
    b"\x2b\x65\x6e",  # X25519
    b"\x2a\x86\x48\xce\x38\x04\x01",  # DSA
    b"\x2a\x86\x48\x86\xf7\x0d\x01\x05\x0d",  # PBES2 (an encrypted PKCS#8 key)
)


def _der_private_key(head: bytes) -> bool:
    """The first bytes of a DER private key: SEQUENCE, then INTEGER 0 or 1 (PKCS#1, SEC1,
    PKCS#8), or an encrypted PKCS#8 key. Certificates and public keys start SEQUENCE SEQUENCE."""
    if len(head) < 12 or head[0] != 0x30:
        return False
    pos = 2 + (head[1] & 0x7F if head[1] & 0x80 else 0)
    body = head[pos:]
    if body[:3] in (b"\x02\x01\x00", b"\x02\x01\x01"):
        return True
    return body[:1] == b"\x30" and any(oid in head[: len(head)] for oid in _PKCS8_OIDS[-1:])


def private_key_body(
    name: str, buf: bytes, at: int, to: int, line_start: int, line_end: int
) -> Iterator[Span]:
    """The first body line of a private key printed without its BEGIN line."""
    start = line_start
    while start < at and buf[start] in b" \t\"'":
        start += 1
    if start != at:
        return
    run = _B64_LINE.match(buf, at, line_end)
    if run is None or buf[run.end() : line_end].strip(b" \t\r\"',\\n") != b"":
        return
    text = buf[at : at + 48]
    try:
        head = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return
    if head.startswith(_OPENSSH_MAGIC) or _der_private_key(head):
        yield Span(at, run.end(), at, run.end(), name, True)


# --- values assigned to secret-named keys ------------------------------------------------

_ASSIGN = re.compile(
    rb"""["'`\]]?[ \t]{0,3}(?:=|:=|::=|:(?=[ \t"'`]|$)|=>|\?=|>|[ \t]*,[ \t]*(?=["']))[ \t]{0,5}"""
    rb"""(?:(?P<q>["'`])(?P<quoted>[^"'`\n]{1,4096}?)(?P=q)|(?P<bare>[^\s"'`;,&<>(){}\[\]|]{1,4096}))"""
)
_PASSWORD_KEY = re.compile(
    rb"(?i)(?:.*?(?:password|passwd|passphrase|passcode|kennwort|contrase(?:n|\xc3\xb1)a|"
    rb"mot_?de_?passe|senha)|(?:.*[_.-])?(?:pass|pwd|pw|pword)|.*[a-z](?-i:Pass|Pwd))"
    rb"(?:[_.-]?(?:[0-9]|plain|clear|text|value|b64|base64|hash|enc|encrypted))?"
)
_SECRET_WORDS = (
    rb"secret|token|credentials?|creds|auth|signature|salt|sessionid|session[_.-]?(?:id|key|token)|"
    rb"jsessionid|phpsessid|sid|bearer|jwt|otp|totp|sas|pat|api[_.-]?key|apikey|"
    rb"access[_.-]?key|secret[_.-]?key|private[_.-]?key|auth[_.-]?key|client[_.-]?key|"
    rb"master[_.-]?key|encryption[_.-]?key|signing[_.-]?key|license[_.-]?key|app[_.-]?key|"
    rb"consumer[_.-]?key|account[_.-]?key|service[_.-]?key|subscription[_.-]?key|"
    rb"webhook[_.-]?key|deploy[_.-]?key|hmac[_.-]?key|shared[_.-]?key|session[_.-]?secret"
)
_SECRET_KEY = re.compile(
    rb"(?i)(?:(?:.*?[^a-z0-9])?(?:"
    + _SECRET_WORDS
    + rb")|.*?[a-z0-9](?-i:Secret|Token|Key|ApiKey|Auth)"
    rb"|(?:[a-z0-9]+[_.-])*[a-z0-9]+[_.-]key)"
    rb"(?:[_.-]?(?:base|value|b64|base64|hex|raw|data|bytes))?"  # SECRET_KEY_BASE, client-key-data
)
# `<something>_key` is a secret unless the something says the key is a name, an index or public.
_NOT_SECRET_KEYS = re.compile(
    rb"(?i)(?:.*[_.-])?(?:public|pub|primary|foreign|sort|partition|cache|idempotency|row|map|hot|"
    rb"object|dict|hash|sequence|unique|composite|natural|surrogate|lookup|index|idx|schema|group|"
    rb"kms|host|ssh[_.-]?host|known|registry|label|selector|bucket|routing|shard|dedup|dedupe|"
    rb"message|event|translation|i18n|locale|menu|short|sign|primary|foreign|next|prev|page|"
    rb"continuation|cursor|sync|resume|etag|idempotency|cache|column|field|attr|attribute|"
    rb"prop|property|config|setting|state|table|name|type)[_.-]?key"
    rb"|(?:.*[_.-])?(?:csrf|xsrf|next[_.-]?page|page|continuation|sync|resume)[_.-]?token"
)


_IDENT = re.compile(rb"[A-Za-z0-9_.$@-]{0,80}")


_KEY_BEFORE = frozenset(b" \t\r\n\"'`{([<,;&?|/*#!\x1b")
_TEXT_VALUE = re.compile(rb"[\x20-\x7e]+")
_KEY_BEFORE_OPERATOR = re.compile(
    rb"""[=:>,?]{0,2}[ \t]{0,3}["'`\]]?[ \t]{0,3}([A-Za-z0-9_.$@-]{1,80})"""
)


def _assignments(
    buf: bytes, to: int, line_start: int, line_end: int, key: re.Pattern[bytes]
) -> Iterator[tuple[int, int, bytes]]:
    """(value start, value end, key name) of the assignment whose operator ends at `to`.

    The key is read backwards from the operator (the trigger ends there)."""
    operator = to - 1
    before = buf[max(line_start, operator - 90) : operator][::-1]
    found = _KEY_BEFORE_OPERATOR.match(before)
    if found is None:
        return
    key_end = operator - found.start(1)
    key_start = operator - found.end(1)
    if key_start > line_start and buf[key_start - 1] not in _KEY_BEFORE:
        return  # a key name follows a blank, a quote, a bracket or punctuation, not binary
    name = buf[key_start:key_end].strip(b".-$@")
    if not name or key.fullmatch(name) is None:
        return
    value = _ASSIGN.match(buf, key_end, line_end)
    if value is not None:
        group = "quoted" if value.group("quoted") is not None else "bare"
        start, end = value.span(group)
        if _TEXT_VALUE.fullmatch(buf, start, end) is not None or _utf8(buf[start:end]):
            yield start, end, name


def _utf8(value: bytes) -> bool:
    """Printable text beyond ASCII (a password in UTF-8), not bytes of a binary file."""
    try:
        return value.decode("utf-8").isprintable()
    except UnicodeDecodeError:
        return False


_PASSWORD_BARE = re.compile(rb"""[^\s"'`;]+""")
_QUERY_BARE = re.compile(rb"""[^\s"'`;&#]+""")


def keyed_password(
    name: str, buf: bytes, at: int, to: int, line_start: int, line_end: int
) -> Iterator[Span]:
    for start, end, key in _assignments(buf, to, line_start, line_end, _PASSWORD_KEY):
        if buf[start - 1 : start] not in (
            b'"',
            b"'",
            b"`",
        ):  # unquoted: a password may hold & ( ) < >
            key_start = buf.rfind(key, line_start, start)
            query = key_start > line_start and buf[key_start - 1] in b"?&"
            bare = (_QUERY_BARE if query else _PASSWORD_BARE).match(buf, start, line_end)
            if bare is not None:
                end = max(end, bare.end())
                while end > start + 1 and buf[end - 1] in b",)]}":
                    end -= 1
        if validators.password_value(buf[start:end]):
            yield Span(start, end, start, end, name)


def keyed_secret(
    name: str, buf: bytes, at: int, to: int, line_start: int, line_end: int
) -> Iterator[Span]:
    for start, end, key in _assignments(buf, to, line_start, line_end, _SECRET_KEY):
        if _NOT_SECRET_KEYS.fullmatch(key) is None and validators.secret_value(buf[start:end]):
            yield Span(start, end, start, end, name)


BUILTINS: dict[str, Builtin] = {
    "email": email,
    "private_key": private_key,
    "private_key_body": private_key_body,
    "keyed_password": keyed_password,
    "keyed_secret": keyed_secret,
}
