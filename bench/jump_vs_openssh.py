"""The bastion against a plain OpenSSH sshd used as the jump host, every data path, in one run.

Everything runs on 127.0.0.1: one real sshd as the target, a second real
sshd as the OpenSSH jump host, and `bastion serve` (restarted for each of
its configurations). The agent is the stock OpenSSH client everywhere, with
the same key exchange on both paths (curve25519-sha256: OpenSSH's default
post-quantum exchange costs it about 190 ms more per connection).

Rows (medians of --rounds; MB/s of a --megabytes log-like text file):

  exec download    ssh J target 'cat FILE' > /dev/null
  scp download     scp -J ... target:FILE /dev/null     (SFTP, OpenSSH 9's scp)
  sftp download    sftp -J ... target  <<< 'get FILE /dev/null'
  pty cat          ssh -tt J target 'cat FILE'
  exec upload      ssh J target 'cat > /dev/null' < FILE
  scp upload       scp -J ... FILE target:/tmp/...
  sftp upload      sftp put
  latency          ssh J target true (ms, --runs runs)

The bastion runs three times: masking and recording on (the default), masking
off, recording off. Run as root (it creates an unprivileged login):

  python bench/jump_vs_openssh.py [--megabytes 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import asyncssh

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

from harness import Agent, make_agent, make_state, start_bastion, state_store  # noqa: E402

from bastion.localsshd import ensure_unprivileged_user, start_sshd  # noqa: E402
from bastion.targets import Target  # noqa: E402

LOGIN = "bastionbench"
KEX = ("-o", "KexAlgorithms=curve25519-sha256", "-o", "LogLevel=ERROR")
CONFIGS = {  # name -> (table, key, value) set in bastion.toml
    "bastion": None,
    "bastion, masking off": ("masking", "enabled", "false"),
    "bastion, recording off": ("recordings", "enabled", "false"),
}


def make_text_file(path: Path, size: int) -> None:
    """Log-like text: what agents mostly read, and what recordings are made for."""
    line = b"2026-11-24T10:00:00Z app[1234]: GET /api/v1/items?page=42 200 12ms user=agent-7\n"
    block = line * ((1 << 20) // len(line) + 1)
    with path.open("wb") as handle:
        written = 0
        while written < size:
            chunk = block[: size - written]
            handle.write(chunk)
            written += len(chunk)
    os.chmod(path, 0o644)


class Paths:
    """The commands of every row for one way of reaching the target."""

    def __init__(self, agent: Agent, jump: str, dest_host: str, source: Path, work: Path) -> None:
        self.agent, self.jump, self.host, self.source, self.work = (
            agent,
            jump,
            dest_host,
            source,
            work,
        )
        self.dest = f"{LOGIN}@{dest_host}"

    def ssh(self, *args: str) -> list[str]:
        return self.agent.ssh(*KEX, "-J", self.jump, self.dest, *args)

    def scp(self, *args: str) -> list[str]:
        return ["scp", "-q", "-F", str(self.agent.config), *KEX, "-J", self.jump, *args]

    def sftp(self) -> list[str]:
        return [
            "sftp",
            "-q",
            "-b",
            "-",
            "-F",
            str(self.agent.config),
            *KEX,
            "-J",
            self.jump,
            self.dest,
        ]

    def rows(self) -> dict[str, Callable[[], None]]:
        src = str(self.source)
        remote_tmp = f"/tmp/bastion-bench-upload-{os.getpid()}"
        return {
            "exec download": lambda: _run(self.ssh(f"cat {src}"), stdout=subprocess.DEVNULL),
            "scp download": lambda: _run(self.scp(f"{self.dest}:{src}", "/dev/null")),
            "sftp download": lambda: _run(self.sftp(), input=f"get {src} /dev/null\n".encode()),
            "pty cat": lambda: _run(
                self.agent.ssh(*KEX, "-tt", "-J", self.jump, self.dest, f"cat {src}"),
                stdout=subprocess.DEVNULL,
                stdin=subprocess.PIPE,
            ),
            "exec upload": lambda: _run(self.ssh("cat > /dev/null"), stdin_file=self.source),
            "scp upload": lambda: _run(self.scp(src, f"{self.dest}:{remote_tmp}")),
            "sftp upload": lambda: _run(self.sftp(), input=f"put {src} {remote_tmp}\n".encode()),
        }


def _run(
    argv: list[str], *, input: bytes | None = None, stdin_file: Path | None = None, **kw
) -> None:
    if stdin_file is not None:
        with stdin_file.open("rb") as handle:
            result = subprocess.run(
                argv, stdin=handle, capture_output="stdout" not in kw, timeout=900, **kw
            )
    else:
        if "stdin" in kw and kw["stdin"] is subprocess.PIPE:
            kw.pop("stdin")
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
            _, err = proc.communicate(timeout=900)
            if proc.returncode not in (0, None):
                raise RuntimeError(f"{argv[-1]!r} failed ({proc.returncode}): {err[-300:]!r}")
            return
        result = subprocess.run(
            argv, input=input, capture_output="stdout" not in kw, timeout=900, **kw
        )
    if result.returncode != 0:
        raise RuntimeError(f"{argv[-1]!r} failed ({result.returncode}): {result.stderr!r}")


def measure(paths: Paths, size: int, rounds: int, runs: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, action in paths.rows().items():
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            action()
            times.append(time.perf_counter() - start)
        out[name] = size / statistics.median(times) / 1e6
    _run(paths.ssh("true"))  # warm
    latencies = []
    for _ in range(runs):
        start = time.perf_counter()
        _run(paths.ssh("true"))
        latencies.append(time.perf_counter() - start)
    out["latency"] = statistics.median(latencies) * 1000
    return out


def set_key(text: str, table: str, key: str, value: str) -> str:
    """`key = value` in `[table]` of a TOML text: replaced if there, else added."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == f"[{table}]"), None)
    if start is None:
        return text.rstrip("\n") + f"\n\n[{table}]\n{key} = {value}\n"
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines)
    )
    for i in range(start + 1, end):
        if lines[i].split("=")[0].strip() == key:
            lines[i] = f"{key} = {value}"
            return "\n".join(lines) + "\n"
    lines.insert(start + 1, f"{key} = {value}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--only", choices=list(CONFIGS), action="append")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark creates an unprivileged login")
    ensure_unprivileged_user(LOGIN)
    work = Path(tempfile.mkdtemp(prefix="bastion-bench-"))
    os.chmod(work, 0o755)
    size = args.megabytes * 1_000_000
    source = work / "read-me.txt"
    make_text_file(source, size)
    subprocess.run(["cat", str(source)], stdout=subprocess.DEVNULL, check=True)  # page cache
    state = make_state(work / "state")
    base_config = state.config_file.read_text()
    user_ca = (state.keys / "user_ca.pub").read_text().strip()
    trusted = f"{(state.keys / 'target_ca.pub').read_text().strip()}\n{user_ca}"
    target = start_sshd(work / "target", trusted_user_ca=trusted, allow_user=LOGIN)
    jump = start_sshd(work / "jump", trusted_user_ca=user_ca, allow_user=LOGIN)
    results: dict[str, dict[str, float]] = {}
    try:
        with state_store(state) as store:
            store.add_target(
                Target("target", "127.0.0.1", target.port, host_key=target.host_key_pub)
            )
        agent = make_agent(work / "agent", state, 1, identity=LOGIN, principals=(LOGIN,))
        with (agent.dir / "known_hosts").open("a") as kh:
            kh.write(f"[127.0.0.1]:{target.port} {target.host_key_pub}\n")
            kh.write(f"[127.0.0.1]:{jump.port} {jump.host_key_pub}\n")
        config = agent.config.read_text()
        config = (
            f"Host openssh-jump\n  HostName 127.0.0.1\n  Port {jump.port}\n  User {LOGIN}\n\n"
            f"Host target-direct\n  HostName 127.0.0.1\n  Port {target.port}\n\n" + config
        )
        openssh = Paths(agent, "openssh-jump", "target-direct", source, work)
        agent.config.write_text(config)
        results["OpenSSH jump host"] = measure(openssh, size, args.rounds, args.runs)
        for name in args.only or CONFIGS:
            change = CONFIGS[name]
            text = base_config if change is None else set_key(base_config, *change)
            state.config_file.write_text(text)
            bastion = start_bastion(state)
            try:
                agent.config.write_text(config.replace("  Port 1\n", f"  Port {bastion.port}\n", 1))
                results[name] = measure(
                    Paths(agent, "bastion", "target", source, work), size, args.rounds, args.runs
                )
            finally:
                bastion.stop()
        print_table(results, args)
    finally:
        target.stop()
        jump.stop()
        shutil.rmtree(work, ignore_errors=True)


def print_table(results: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    rows = list(next(iter(results.values())))
    base = results["OpenSSH jump host"]
    print(
        f"\n{args.megabytes} MB log text, medians of {args.rounds}; latency median of {args.runs};"
        f" asyncssh {asyncssh.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} cores\n"
    )
    header = f"{'path':<16}" + "".join(f"{name:>26}" for name in results)
    print(header)
    for row in rows:
        unit = "ms" if row == "latency" else "MB/s"
        cells = []
        for name, values in results.items():
            value = values[row]
            ratio = "" if name == "OpenSSH jump host" else f" ({value / base[row]:.2f}x)"
            cells.append(f"{value:>10.0f} {unit}{ratio:>9}")
        print(f"{row:<16}" + "".join(f"{cell:>26}" for cell in cells))


if __name__ == "__main__":
    main()
