"""A small SSH target run in process, for `bastion demo` where no sshd is installed.

It trusts the bastion's target CA exactly as a real sshd with
TrustedUserCAKeys would, accepts only the one login it serves (the user the
demo runs as), and runs commands with /bin/sh as that user, with a pty when
one is requested. It is a demo stand-in, not a hardened server.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import struct
import termios
from dataclasses import dataclass

import asyncssh

SHELL = "/bin/sh"


@dataclass
class EmbeddedTarget:
    port: int
    host_key_pub: str
    server: asyncssh.SSHAcceptor

    def stop(self) -> None:
        self.server.close()


async def _run(process: asyncssh.SSHServerProcess) -> None:
    command = process.command
    argv = [SHELL, "-c", command] if command else [SHELL, "-i"]
    env = dict(os.environ, **{str(k): str(v) for k, v in process.env.items()})
    try:
        if process.term_type:
            env["TERM"] = process.term_type
            status = await _run_in_pty(process, argv, env)
        else:
            status = await _run_with_pipes(process, argv, env)
    except OSError as exc:
        process.stderr.write(f"cannot run {SHELL}: {exc}\n".encode())
        status = 127
    process.exit(status if status >= 0 else 128 - status)


async def _copy_in(process: asyncssh.SSHServerProcess, write, close) -> None:
    """Agent's stdin to the child until EOF."""
    try:
        while data := await process.stdin.read(65536):
            write(data)
    except (asyncssh.Error, OSError):
        pass
    finally:
        close()


async def _run_with_pipes(
    process: asyncssh.SSHServerProcess, argv: list[str], env: dict[str, str]
) -> int:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    assert proc.stdin and proc.stdout and proc.stderr

    async def copy_out(reader: asyncio.StreamReader, writer: asyncssh.SSHWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()

    feeder = asyncio.ensure_future(_copy_in(process, proc.stdin.write, proc.stdin.close))
    await asyncio.gather(
        copy_out(proc.stdout, process.stdout), copy_out(proc.stderr, process.stderr)
    )
    status = await proc.wait()
    feeder.cancel()
    return status


async def _run_in_pty(
    process: asyncssh.SSHServerProcess, argv: list[str], env: dict[str, str]
) -> int:
    master, slave = pty.openpty()
    width, height = process.term_size[:2]
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", height or 24, width or 80, 0, 0))
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def readable() -> None:
        try:
            data = os.read(master, 65536)
        except OSError:
            data = b""
        if data:
            process.stdout.write(data)
        else:
            loop.remove_reader(master)
            if not done.done():
                done.set_result(None)

    loop.add_reader(master, readable)
    feeder = asyncio.ensure_future(_copy_in(process, lambda d: os.write(master, d), lambda: None))
    status = await proc.wait()
    await asyncio.wait_for(done, timeout=5)
    feeder.cancel()
    os.close(master)
    return status


async def start_embedded_target(*, trusted_user_ca: str, login: str) -> EmbeddedTarget:
    host_key = asyncssh.generate_private_key("ssh-ed25519", comment="bastion-embedded-target")
    authorized = asyncssh.import_authorized_keys(
        f'cert-authority,principals="{login}" {trusted_user_ca.strip()}\n'
    )

    class Server(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            if username == login:
                self._conn.set_authorized_keys(authorized)
            return True

        def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
            self._conn = conn

    server = await asyncssh.listen(
        "127.0.0.1",
        0,
        server_host_keys=[host_key],
        server_factory=Server,
        process_factory=_run,
        encoding=None,
        allow_scp=False,
        agent_forwarding=False,
        x11_forwarding=False,
    )
    port = server.sockets[0].getsockname()[1]
    return EmbeddedTarget(port, host_key.export_public_key().decode().strip(), server)
