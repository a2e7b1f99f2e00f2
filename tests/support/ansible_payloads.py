"""Real AnsiballZ payloads, made by the installed ansible-core at test time.

`ansible localhost -c local` runs each module on this machine (harmless ones:
ping, uptime, a directory and a copy under a temporary directory, which runs stat too)
with ANSIBLE_KEEP_REMOTE_FILES=1, which leaves the payload files behind.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ANSIBLE = [sys.executable, "-m", "ansible.cli.adhoc"]  # the `ansible` command, wherever pip put it


def make_payloads(root: Path) -> dict[str, str]:
    """module name -> the text of its AnsiballZ payload."""
    if importlib.util.find_spec("ansible") is None:
        raise RuntimeError("ansible-core is part of the test extra: pip install -e '.[test]'")
    remote = root / "remote"
    source = root / "source.txt"
    source.write_text("hello from a test\n")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(root / "home"),
        "ANSIBLE_KEEP_REMOTE_FILES": "1",
        "ANSIBLE_REMOTE_TMP": str(remote),
        "ANSIBLE_LOCAL_TEMP": str(root / "local"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_CONFIG": str(root / "none.cfg"),
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
    }
    (root / "home").mkdir(exist_ok=True)
    runs = [
        ("ping", ""),
        ("command", "uptime"),
        ("file", f"path={root / 'made'} state=directory mode=0700"),
        ("copy", f"src={source} dest={root / 'copied.txt'}"),  # runs stat, then copy
    ]
    for module, args in runs:
        argv = [*ANSIBLE, "localhost", "-c", "local", "-m", module]
        argv += ["-e", f"ansible_python_interpreter={sys.executable}"]
        if args:
            argv += ["-a", args]
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"ansible -m {module} failed: {result.stdout}{result.stderr}")
    payloads = {}
    for path in sorted(remote.rglob("AnsiballZ_*.py")):
        name = path.name[len("AnsiballZ_") : -len(".py")]
        payloads.setdefault(name, path.read_text())
    return payloads
