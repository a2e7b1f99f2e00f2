"""How long a reviewer's decision takes to reach a held command, in one run on 127.0.0.1.

A real sshd target, `bastion serve`, and the stock OpenSSH client as the
agent. The agent runs `uname -s`, which the test policy holds for review;
the benchmark approves it (in the database, as `bastion approve` does, and
over SSH as a remote reviewer does) and measures:

  approve returned -> output   from the reviewer's approval returning to the agent's output
  remote approve       wall time of `ssh bastion 'approve N'` (a reviewer's round trip)
  plain exec           `ssh -J bastion target true` (not held), for scale

Run as root (it creates an unprivileged login): python bench/approval_latency.py
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

from harness import make_agent, make_state, start_bastion, state_store, wait_until  # noqa: E402

from bastion.approvals import Reviewer, decide  # noqa: E402
from bastion.localsshd import ensure_unprivileged_user, start_sshd  # noqa: E402
from bastion.targets import Target  # noqa: E402

LOGIN = "bastionbench"
ROLES = """
[[role]]
name = "agents"
match = {{ groups = ["agents"] }}
targets = ["web1"]
logins = ["{login}"]

[[role]]
name = "reviewers"
match = {{ groups = ["reviewers"] }}
targets = ["web1"]
logins = ["{login}"]
approve = true
"""


def pending(state, command: str) -> int | None:  # type: ignore[no-untyped-def]
    with state_store(state) as store:
        rows = [r for r in store.list_requests() if r.command == command]
    return rows[-1].id if rows else None


def held_then_approved(agent, state, approve) -> float:  # type: ignore[no-untyped-def]
    client = subprocess.Popen(
        agent.ssh("-J", "bastion", f"{LOGIN}@web1", "uname -s"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    request_id = wait_until(lambda: pending(state, "uname -s"), 30, interval=0.02)
    if not request_id:
        raise SystemExit("no request appeared")
    approve(request_id)
    decided = time.monotonic()
    line = client.stdout.readline()  # type: ignore[union-attr]
    arrived = time.monotonic()
    client.communicate(timeout=30)
    if line != b"Linux\n" or client.returncode != 0:
        raise SystemExit(f"unexpected result: {line!r} {client.returncode}")
    return arrived - decided


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    ensure_unprivileged_user(LOGIN)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        state = make_state(root / "state")
        with state.config_file.open("a") as config:
            config.write(ROLES.format(login=LOGIN))
        sshd = start_sshd(
            root / "sshd",
            trusted_user_ca=(state.keys / "target_ca.pub").read_text(),
            allow_user=LOGIN,
        )
        with state_store(state) as store:
            store.add_target(Target("web1", "127.0.0.1", sshd.port, host_key=sshd.host_key_pub))
        bastion = start_bastion(state)
        try:
            agent = make_agent(
                root / "agent", state, bastion.port, groups=("agents",), principals=(LOGIN,)
            )
            alice = make_agent(
                root / "alice",
                state,
                bastion.port,
                identity="alice",
                groups=("reviewers",),
                principals=(LOGIN,),
            )

            def local(request_id: int) -> None:
                with state_store(state) as own:
                    own.call(
                        decide(
                            own.store, Reviewer("local:bench", local=True), request_id, approve=True
                        )
                    )

            remote_times: list[float] = []

            def remote(request_id: int) -> None:
                started = time.monotonic()
                result = subprocess.run(
                    alice.ssh("bastion", shlex.join(["approve", str(request_id)])),
                    capture_output=True,
                    timeout=60,
                )
                remote_times.append(time.monotonic() - started)
                if result.returncode != 0:
                    raise SystemExit(result.stderr.decode())

            local_lat = [held_then_approved(agent, state, local) for _ in range(args.runs)]
            remote_lat = [held_then_approved(agent, state, remote) for _ in range(args.runs)]
            plain = []
            for _ in range(args.runs):
                started = time.monotonic()
                subprocess.run(
                    agent.ssh("-J", "bastion", f"{LOGIN}@web1", "true"),
                    capture_output=True,
                    check=True,
                )
                plain.append(time.monotonic() - started)
        finally:
            bastion.stop()
            sshd.stop()

    def row(name: str, values: list[float]) -> str:
        ms = [v * 1000 for v in values]
        return f"{name:<34} {statistics.median(ms):>9.0f} {max(ms):>9.0f}"

    print(f"{args.runs} runs each, 127.0.0.1")
    print(f"{'measure':<34} {'median ms':>9} {'max ms':>9}")
    print(row("approve returned -> output (local)", local_lat))
    print(row("approve returned -> output (ssh)", remote_lat))
    print(row("remote approve round trip (ssh)", remote_times))
    print(row("plain exec through the bastion", plain))


if __name__ == "__main__":
    main()
