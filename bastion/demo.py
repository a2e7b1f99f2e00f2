"""`bastion demo`: a bastion, a real target and a demo agent, from nothing.

Everything lives in a temporary state dir and listens on 127.0.0.1 only.
The target is a real OpenSSH sshd trusting the bastion's target CA; run as
root, the demo logs in to an unprivileged account it creates. A dev OIDC
issuer (bastion/devissuer.py) hands out tokens for a demo agent and a demo
reviewer, and both get their certificates through `bastion login`, the same
exchange a CI job uses.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bastion.devissuer import DevIssuer
from bastion.embedded_target import start_embedded_target
from bastion.errors import BastionError
from bastion.localsshd import ensure_unprivileged_user, find_sshd, free_port, start_sshd
from bastion.login import LoginResult, plan_login, read_token
from bastion.login import login as do_login
from bastion.server import open_bastion, run_bastion
from bastion.setup_state import initialise
from bastion.statedir import StateDir
from bastion.store import open_store
from bastion.targets import Target

DEMO_TARGET = "demo-target"
DEMO_IDENTITY = "demo-agent"
DEMO_REVIEWER = "demo-reviewer"
DEMO_UNPRIVILEGED_USER = "bastion-demo"


@dataclass
class DemoSetup:
    root: Path
    state: StateDir
    port: int
    login: str
    ssh_config: Path
    target_kind: str = "sshd"
    target_port: int = 0
    stop_target: Callable[[], None] = lambda: None
    issuer: DevIssuer | None = None

    def ssh(self, *args: str) -> list[str]:
        return ["ssh", "-F", str(self.ssh_config), *args]


DEMO_ROLES = """
[[issuer]]
name = "dev"
url = "{issuer}"
audience = "bastion"
algorithms = ["ES256"]

[[role]]
name = "agents"
issuer = "dev"
match = {{ groups = ["agents"] }}
targets = ["env=demo"]
logins = ["{login}"]
cert_ttl = "1h"

[[role]]
name = "reviewers"
issuer = "dev"
match = {{ groups = ["reviewers"] }}
targets = ["env=demo"]
logins = ["{login}"]
cert_ttl = "1h"
approve = true
"""


def prepare(root: Path, issuer: DevIssuer) -> DemoSetup:
    """State dir, CA keys and a bastion.toml trusting the dev issuer; the agent logs in later."""
    if shutil.which("ssh") is None:
        raise BastionError("the demo needs the OpenSSH client: apt-get install openssh-client")
    state = StateDir(root / "state")
    port = free_port()
    initialise(state, listen=f"127.0.0.1:{port}")
    login = (
        ensure_unprivileged_user(DEMO_UNPRIVILEGED_USER) if os.geteuid() == 0 else getpass.getuser()
    )
    config = state.config_file.read_text().replace(
        'host_names = ["localhost", "127.0.0.1"]',
        'host_names = ["bastion", "localhost", "127.0.0.1"]',
    )
    state.config_file.write_text(config + DEMO_ROLES.format(issuer=issuer.url, login=login))
    return DemoSetup(root, state, port, login, root / DEMO_IDENTITY / "ssh_config", issuer=issuer)


async def log_in(setup: DemoSetup, identity: str) -> LoginResult:
    """What an agent does: a token from the issuer, then `bastion login` with it."""
    assert setup.issuer is not None
    out = setup.root / identity
    out.mkdir(mode=0o700, exist_ok=True)
    token_file = out / "token"
    token_file.write_text(setup.issuer.id_token(identity))
    os.chmod(token_file, 0o600)
    plan = plan_login(f"127.0.0.1:{setup.port}", out, setup.state.keys / "host_ca.pub")
    return await asyncio.to_thread(do_login, plan, read_token(token_file, None))


async def start_target(setup: DemoSetup, kind: str) -> None:
    """A real sshd when one is installed (or asked for), else the embedded target."""
    ca = (setup.state.keys / "target_ca.pub").read_text()
    if kind == "auto":
        kind = "sshd" if find_sshd() is not None else "embedded"
    if kind == "sshd":
        if find_sshd() is None:
            raise BastionError(
                "no sshd installed: apt-get install openssh-server, or --target embedded"
            )
        sshd = start_sshd(setup.root / "target", trusted_user_ca=ca, allow_user=setup.login)
        port, host_key, setup.stop_target = sshd.port, sshd.host_key_pub, sshd.stop
    else:
        if os.geteuid() == 0:
            # The embedded target runs commands as the demo's own user: never as root.
            raise BastionError("the embedded target does not run as root; install openssh-server")
        embedded = await start_embedded_target(trusted_user_ca=ca, login=setup.login)
        port, host_key, setup.stop_target = embedded.port, embedded.host_key_pub, embedded.stop
    setup.target_kind, setup.target_port = kind, port
    async with open_store(setup.state.store_url(), node="demo") as store:
        await store.add_target(
            Target(DEMO_TARGET, "127.0.0.1", port, host_key=host_key, labels={"env": "demo"})
        )


def _commands(setup: DemoSetup) -> list[str]:
    assert setup.issuer is not None
    cfg = shlex.quote(str(setup.ssh_config))
    dest = f"{setup.login}@{DEMO_TARGET}"
    state = shlex.quote(str(setup.state.root))
    agent_dir = shlex.quote(str(setup.root / DEMO_IDENTITY))
    reviewer_cfg = shlex.quote(str(setup.root / DEMO_REVIEWER / "ssh_config"))
    return [
        "# the agent logged in already; again, with the dev issuer's token or in a browser:",
        f"bastion login --bastion 127.0.0.1:{setup.port} --token-file {agent_dir}/token --out {agent_dir}",
        f"bastion login --bastion 127.0.0.1:{setup.port} --device --issuer {setup.issuer.url}"
        f" --out {agent_dir}",
        "# then, as the agent:",
        f"ssh -F {cfg} -J bastion {dest} 'echo hello from $(hostname) as $(whoami)'",
        f"ssh -F {cfg} -J bastion {dest}            # an interactive shell, recorded",
        f"ssh -F {cfg} -p {setup.port} {setup.login}%{DEMO_TARGET}@127.0.0.1 uptime",
        f"ssh -F {cfg} -J bastion {dest} \"python3 -c 'print(6*7)'\"   # held for review",
        "# as the reviewer (its own certificate), or the operator on this host:",
        f"ssh -F {reviewer_cfg} bastion requests",
        f"ssh -F {reviewer_cfg} bastion 'approve N'",
        f"bastion requests --state-dir {state}",
        f"bastion sessions --state-dir {state}",
        f"bastion replay SESSION_ID --state-dir {state}",
        f"bastion audit --state-dir {state}",
        f"bastion search 'hello from' --state-dir {state}",
    ]


TOUR = [
    (
        "exec through the jump host",
        ["-J", "bastion", "{dest}", "echo hello from $(whoami)"],
        0,
        "hello from",
    ),
    ("exit status is relayed", ["-J", "bastion", "{dest}", "exit 3"], 3, None),
    (
        "direct addressing LOGIN%TARGET",
        ["{login}%" + DEMO_TARGET + "@bastion", "id -un"],
        0,
        "{login}",
    ),
    (
        "a credential read is denied by the default rules",
        ["-J", "bastion", "{dest}", "sh -c 'cat /etc/shadow'"],
        126,
        "denied by rule credential-read",
    ),
    (
        "an unregistered target is refused",
        ["-J", "bastion", "{login}@nowhere", "true"],
        255,
        "unknown target",
    ),
]


async def _tour(setup: DemoSetup) -> int:
    failures = 0
    for title, args, want_status, want_text in TOUR:
        argv = setup.ssh(
            *[a.format(dest=f"{setup.login}@{DEMO_TARGET}", login=setup.login) for a in args]
        )
        print(f"\n$ {shlex.join(argv)}\n  ({title})", flush=True)
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        text = (out + err).decode(errors="replace")
        print("  " + text.strip().replace("\n", "\n  ") if text.strip() else "  (no output)")
        expected = want_text.format(login=setup.login) if want_text else None
        ok = proc.returncode == want_status and (expected is None or expected in text)
        print(f"  exit {proc.returncode}: {'ok' if ok else 'UNEXPECTED'}", flush=True)
        failures += not ok
    await asyncio.sleep(0.3)  # let the last audit writes land
    for verb in ("sessions", "audit"):
        argv = [sys.executable, "-m", "bastion", verb, "--state-dir", str(setup.state.root)]
        print(f"\n$ bastion {verb}", flush=True)
        proc = await asyncio.create_subprocess_exec(*argv)
        await proc.wait()
        failures += proc.returncode != 0
    print(
        f"\ndemo tour: {len(TOUR) - failures if failures <= len(TOUR) else 0}/{len(TOUR)} steps as expected"
    )
    return 1 if failures else 0


async def _main(setup: DemoSetup, script: bool, target: str) -> int:
    await start_target(setup, target)
    bastion = open_bastion(setup.state)
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    server = asyncio.ensure_future(run_bastion(bastion, f"127.0.0.1:{setup.port}", ready))
    try:
        await asyncio.wait_for(asyncio.shield(ready), timeout=10)
        for identity in (DEMO_IDENTITY, DEMO_REVIEWER):
            result = await log_in(setup, identity)
            print(
                f"{identity}: `bastion login` exchanged a token from the dev issuer for certificate "
                f"serial {result.serial} (logins {', '.join(result.principals)})",
                flush=True,
            )
        if script:
            return await _tour(setup)
        what = "a real sshd" if setup.target_kind == "sshd" else "the embedded target"
        print(
            f"bastion listening on 127.0.0.1:{setup.port}; target {DEMO_TARGET} is {what} "
            f"on 127.0.0.1:{setup.target_port}; state in {setup.state.root}\n"
        )
        print("Try these in another terminal (Ctrl-C here stops the demo):\n")
        for command in _commands(setup):
            print(f"  {command}")
        print(flush=True)
        await server
        return 0
    finally:
        server.cancel()
        try:
            await server
        except (asyncio.CancelledError, Exception):
            pass  # run_bastion closed the store


def run_demo(*, script: bool, keep: bool, target: str = "auto") -> int:
    root = Path(tempfile.mkdtemp(prefix="bastion-demo-"))
    os.chmod(root, 0o755)  # the target's sshd (another user) reads its files here
    setup = None
    issuer = DevIssuer.start({DEMO_IDENTITY: ["agents"], DEMO_REVIEWER: ["reviewers"]})
    try:
        setup = prepare(root, issuer)
        return asyncio.run(_main(setup, script, target))
    except KeyboardInterrupt:
        return 0
    finally:
        issuer.stop()
        if setup is not None:
            setup.stop_target()
        if keep:
            print(f"state kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
