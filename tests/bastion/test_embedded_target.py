"""The demo's fallback target (no sshd installed) works with the stock ssh client through the bastion.

It runs in this test process, so its commands run as the test's own user;
the test sends only `echo` and `id`.
"""

from __future__ import annotations

import asyncio
import getpass
import threading

from harness import BastionProcess, make_agent, state_store

from bastion.embedded_target import start_embedded_target
from bastion.targets import Target


def test_embedded_target_exec_and_pty(bastion: BastionProcess, tmp_path) -> None:
    login = getpass.getuser()
    loop = asyncio.new_event_loop()
    ca = (bastion.state.keys / "target_ca.pub").read_text()
    embedded = loop.run_until_complete(start_embedded_target(trusted_user_ca=ca, login=login))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        with state_store(bastion.state) as store:
            store.add_target(
                Target("embedded1", "127.0.0.1", embedded.port, host_key=embedded.host_key_pub)
            )
        agent = make_agent(
            tmp_path, bastion.state, bastion.port, identity="embedded-test", principals=(login,)
        )
        result = agent.run(
            "-J", "bastion", f"{login}@embedded1", "echo from-embedded; id -un; exit 4"
        )
        assert result.stdout == f"from-embedded\n{login}\n".encode(), result.stderr
        assert result.returncode == 4
        with_pty = agent.run(
            "-tt", "-J", "bastion", f"{login}@embedded1", "tty >/dev/null && echo has-tty"
        )
        assert b"has-tty" in with_pty.stdout, with_pty.stderr
        other = agent.run("-J", "bastion", "nobody@embedded1", "true")
        assert other.returncode == 255
    finally:
        loop.call_soon_threadsafe(embedded.stop)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
