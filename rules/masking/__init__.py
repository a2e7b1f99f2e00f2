"""Output masking: secrets and personal data replaced as a stream goes by.

    >>> from rules.masking import Masker
    >>> m = Masker()
    >>> m.feed(b"card 4111 1111 1111 1111, mail jane@exam") + m.feed(b"ple.com\\n")
    b'card [MASKED:card], mail [MASKED:email]\\n'

A library of plain bytes: it knows nothing of SSH, channels or the bastion.
detectors.py says what is looked for, stream.py how a stream is cut so that a
secret split across reads is still found, keyblock.py follows private key
blocks over many lines, validators.py holds the checksums.
"""

from rules.masking.detectors import (
    BUILTIN,
    GROUPS,
    MAX_CUSTOM_PATTERN,
    NAMES,
    Detector,
    custom_detector,
    describe,
    select,
)
from rules.masking.stream import BINARY_POLICIES, WINDOW, Masker, marker

__all__ = [
    "BINARY_POLICIES",
    "BUILTIN",
    "GROUPS",
    "MAX_CUSTOM_PATTERN",
    "NAMES",
    "WINDOW",
    "Detector",
    "Masker",
    "custom_detector",
    "describe",
    "marker",
    "select",
]
