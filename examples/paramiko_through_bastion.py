"""Run a command on a target through the bastion with paramiko, or with Fabric.

paramiko (and Fabric, built on it) cannot read OpenSSH's `@cert-authority`
known_hosts lines, so the bastion's own host key is pinned instead: it is
one key, presented for the bastion and for every target name it answers in
process. Print it on the bastion host with

    bastion host-key --known-hosts bastion.example.com:2222   # a known_hosts line
    bastion host-key                                         # the bare key

and give the agent its key and certificate from `bastion login` (or
`bastion cert issue`). paramiko offers the certificate when the key has it
loaded. Usage:

    python paramiko_through_bastion.py --bastion bastion.example.com:2222 \\
        --key ~/.bastion/id_ed25519 --host-key bastion_host_key.pub \\
        deploy@web1 'uptime'            # add --fabric to go through Fabric

Exit status is the command's; its output is printed as it came.
"""

from __future__ import annotations

import argparse
import base64
import sys
from pathlib import Path

import paramiko


def agent_key(key_file: Path) -> paramiko.PKey:
    """The agent's private key with its certificate (KEY-cert.pub) loaded."""
    key = paramiko.PKey.from_path(key_file)
    key.load_certificate(str(key_file) + "-cert.pub")
    return key


def pinned(host_key_file: Path, names: list[str]) -> paramiko.HostKeys:
    """The bastion's one host key, trusted for each name we will connect to."""
    keys = paramiko.HostKeys()
    words = host_key_file.read_text().split()  # `TYPE KEY [comment]` or `HOST TYPE KEY`
    at = next(i for i, word in enumerate(words) if word.startswith(("ssh-", "ecdsa-")))
    kind, data = words[at], words[at + 1]
    key = paramiko.PKey.from_type_string(kind, base64.b64decode(data))
    for name in names:
        keys.add(name, kind, key)
    return keys


def _client(keys: paramiko.HostKeys) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    for host, entries in keys.items():
        for kind, key in entries.items():
            client.get_host_keys().add(host, kind, key)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())  # never trust on first use
    return client


def run_paramiko(
    bastion: tuple[str, int],
    key: paramiko.PKey,
    keys: paramiko.HostKeys,
    login: str,
    target: str,
    command: str,
) -> tuple[int, bytes, bytes]:
    """Jump as `ssh -J` does: a direct-tcpip channel to TARGET:22, and SSH inside it."""
    host, port = bastion
    outer = _client(keys)
    outer.connect(host, port, username="agent", pkey=key, look_for_keys=False, allow_agent=False)
    try:
        transport = outer.get_transport()
        assert transport is not None
        channel = transport.open_channel("direct-tcpip", (target, 22), ("127.0.0.1", 0))
        inner = _client(keys)
        inner.connect(
            target,
            22,
            username=login,
            pkey=key,
            sock=channel,
            look_for_keys=False,
            allow_agent=False,
        )
        try:
            _, stdout, stderr = inner.exec_command(command)
            out, err = stdout.read(), stderr.read()
            return stdout.channel.recv_exit_status(), out, err
        finally:
            inner.close()
    finally:
        outer.close()


def run_fabric(
    bastion: tuple[str, int],
    key: paramiko.PKey,
    keys: paramiko.HostKeys,
    login: str,
    target: str,
    command: str,
) -> tuple[int, bytes, bytes]:
    """The same through Fabric: the bastion is the target connection's gateway."""
    from fabric import Config, Connection

    config = Config(overrides={"load_ssh_configs": False})
    kwargs = {"pkey": key, "look_for_keys": False, "allow_agent": False}
    gateway = Connection(
        bastion[0], user="agent", port=bastion[1], config=config, connect_kwargs=kwargs
    )
    conn = Connection(
        target, user=login, port=22, gateway=gateway, config=config, connect_kwargs=kwargs
    )
    for c in (gateway, conn):  # Fabric trusts unknown hosts by default; we pin instead
        c.client = _client(keys)
    try:
        result = conn.run(command, hide=True, warn=True, in_stream=False)
        return result.exited, result.stdout.encode(), result.stderr.encode()
    finally:
        conn.close()
        gateway.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bastion", required=True, help="HOST:PORT of the bastion")
    parser.add_argument(
        "--key", required=True, type=Path, help="private key; KEY-cert.pub beside it"
    )
    parser.add_argument("--host-key", required=True, type=Path, help="output of `bastion host-key`")
    parser.add_argument("--fabric", action="store_true", help="go through Fabric instead")
    parser.add_argument("destination", help="LOGIN@TARGET")
    parser.add_argument("command")
    args = parser.parse_args(argv)
    host, _, port = args.bastion.rpartition(":")
    login, _, target = args.destination.partition("@")
    bastion = (host, int(port))
    names = [host if bastion[1] == 22 else f"[{host}]:{port}", target]
    run = run_fabric if args.fabric else run_paramiko
    try:
        status, out, err = run(
            bastion, agent_key(args.key), pinned(args.host_key, names), login, target, args.command
        )
    except (paramiko.SSHException, OSError) as exc:  # as ssh does: one line, status 255
        print(f"{Path(sys.argv[0]).name}: {exc}", file=sys.stderr)
        return 255
    sys.stdout.buffer.write(out)
    sys.stderr.buffer.write(err)
    return status


if __name__ == "__main__":
    sys.exit(main())
