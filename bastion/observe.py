"""What the serve log and the metrics make of each audit row.

`Bastion.audit` hands every row here as it queues it, so every refusal
(unknown target, forbidden login or forward, rejected token, revoked or
over-limit connection...) is logged once, with who and where as fields,
wherever in the protocol code it was audited. Decisions are counted in
bastion/decide.py, where their latency is measured.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from bastion import metrics

log = logging.getLogger("bastion.audit")

_REFUSALS = frozenset({"refused", "revoked"})
_FAILURES = frozenset({"upstream-error", "error", "recording-error"})
_DECIDED = frozenset({"exec", "line", "sftp", "subsystem", "shell"})


def audited(fields: Mapping[str, Any]) -> None:
    """Log (and count) an audit row that a person watching the log should see."""
    kind = fields.get("kind")
    where = {
        "identity": fields.get("identity"),
        "target": fields.get("target"),
        "login": fields.get("login"),
        "session_id": fields.get("session_id"),
    }
    if kind in _REFUSALS:
        metrics.refusal()
        log.warning(
            "refused: %s", fields.get("detail") or kind, extra={"event": "refused", **where}
        )
    elif kind in _FAILURES:
        log.warning(
            "%s: %s", kind, fields.get("detail") or "no detail", extra={"event": kind, **where}
        )
    elif kind in _DECIDED and fields.get("decision") in ("deny", "review"):
        decision = "denied" if fields["decision"] == "deny" else "held for review"
        log.info(
            "%s by rule %s: %s",
            decision,
            fields.get("rule"),
            fields.get("command") or kind,
            extra={"event": f"command.{fields['decision']}", **where},
        )
