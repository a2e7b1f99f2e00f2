"""Sizes on the relay's SSH legs, and the one place that adjusts asyncssh's channel internals.

Measured on loopback with bench/jump_vs_openssh.py; each value says why.
"""

from __future__ import annotations

from typing import Any

import asyncssh

# The upstream session's receive window and packet size. asyncssh's defaults
# (2 MiB, 32 KiB) make the target's sshd send 32 KiB packets; it accepts up
# to 256 KiB, and fewer, larger packets cost less in Python per byte.
UPSTREAM_WINDOW = 8 * 1024 * 1024
UPSTREAM_PACKET = 256 * 1024

# What one inner SSH packet adds around its channel data with AES-GCM: packet
# length (4), padding length (1), message type, channel and data length (9),
# up to 19 bytes of padding and a 16-byte tag; rounded up.
_INNER_OVERHEAD = 64


def fit_inner_packets(chan: asyncssh.SSHServerChannel[bytes]) -> None:
    """Make an inner channel's data packets fit one packet of the outer channel.

    With `ssh -J`, the agent's session runs inside a direct-tcpip channel on
    the outer connection; both sides' channels take 32 KiB packets, so a
    full inner packet (32 KiB of data plus its header and tag) would need two
    outer packets, the second of 40-odd bytes. Capping the inner data at the
    outer packet size minus the inner overhead keeps it to one.
    """
    conn: Any = chan.get_connection()
    outer = getattr(conn, "_transport", None)
    outer_packet = getattr(outer, "_send_pktsize", 0)
    if not isinstance(outer, asyncssh.SSHTCPChannel) or outer_packet <= _INNER_OVERHEAD:
        return  # a direct (LOGIN%TARGET) session runs on the socket itself
    current = getattr(chan, "_send_pktsize", 0)
    if current:
        chan._send_pktsize = min(current, outer_packet - _INNER_OVERHEAD)  # type: ignore[attr-defined]
