"""One channel's side of the carried-files record: judge what it runs, follow what it writes.

ChannelSession (bastion/relay/session.py) asks a Carriage three things:

- `decide_exec`: the engine's verdict on an exec, made more severe when the
  exec runs a file the bastion carried (bastion/relay/carried_runs.py), and
  replaced when the exec is Ansible's pipelining form (`/bin/sh -c
  '/usr/bin/python3 && sleep 0'`): then the whole of stdin is awaited
  (bounded in bytes and time; nothing reaches the target meanwhile) and the
  AnsiballZ payload on it decided. The judging itself (shell parsing,
  decoding, the rules) runs in a decision worker, as every decision does,
  with a copy of this identity's and target's part of the record;
- `exec_allowed`: the exec will run: what it may write is applied to the
  record, and listeners follow `scp -t` uploads, `cat > f`/`tee f`/`dd of=f`
  fed from the agent's stdin, and its exit status (exact effects on 0);
- `line`, for a shell line, and `sftp_watcher` for an SFTP channel.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence

from bastion.ansible.ansiballz import MAX_PAYLOAD
from bastion.decide import Verdict
from bastion.relay.carried import CarriedFile, CarriedFiles, Writing, describe_bytes
from bastion.relay.carried_commands import analyse
from bastion.relay.carried_effects import Applied, Resolver, effects_of, stdin_files
from bastion.relay.carried_runs import CarriedVerdict, most_severe, not_understood
from bastion.relay.events import Exit, Input
from bastion.relay.listeners import Listener
from bastion.relay.relay import Relay
from bastion.relay.scp_sink import ScpUpload, ScpUploadListener
from bastion.relay.sftp_carry import SftpWatcher

PIPELINE_TIMEOUT = 60.0  # seconds to wait for a pipelined module's stdin to end
FAILED = Verdict("deny", "internal-error", "the bastion could not judge the files this runs")
log = logging.getLogger("bastion.carried")

_PY = r"(?:/[A-Za-z0-9_.+-]+)*/python[0-9.]*|python[0-9.]*"
_SH = r"/(?:usr/)?bin/(?:sh|bash|dash)"
# Ansible's pipelining commands (ansible-core's ssh connection and sh shell plugins), as
# text: python reads the exec's stdin and nothing else touches it (sudo -n never prompts).
_PIPELINED = [
    re.compile(rf"(?P<py>{_PY})"),
    re.compile(rf"{_SH} -c '(?P<py>{_PY})(?: && sleep 0)?'"),
    re.compile(
        rf"{_SH} -c 'sudo -H -S -n +-u [a-z_][a-z0-9_-]* {_SH} -c "
        rf"'\"'\"'echo BECOME-SUCCESS-[a-z]+ ; (?P<py>{_PY})'\"'\"'(?: && sleep 0)?'"
    ),
]


def pipelined_python(command: str) -> str | None:
    """The command with its stdin-reading python replaced by `true`, for Ansible's
    pipelining forms; None for anything else (which stays as the engine decides it)."""
    for pattern in _PIPELINED:
        match = pattern.fullmatch(command)
        if match:
            start, end = match.span("py")
            return command[:start] + "true" + command[end:]
    return None


# Worth asking a decision worker about even where nothing was carried: a line that may
# write a file (whose bytes then are not known), or take the agent's stdin into one.
_MAY_WRITE = re.compile(r">|\b(?:scp|cat|tee|dd)\b")

# (line, the scope's copy of the record, env, pipelined form, payload) -> a CarriedVerdict,
# or a denying Verdict when the worker failed (bastion/decisions/pool.py: DecisionPool.carried)
Ask = Callable[[str, CarriedFiles, dict[str, str], str | None, str | None], Awaitable[Verdict]]


class Carriage:
    def __init__(
        self, record: CarriedFiles, ask: Ask, *, identity: str, target: str, login: str
    ) -> None:
        self.record = record
        self.ask = ask
        self.identity = identity
        self.target = target
        self.login = login
        self._answer: CarriedVerdict | None = None

    def _worth_asking(self, line: str) -> bool:
        carried = self.record.paths(self.identity, self.target)
        poisoned = self.record.poisoned(self.identity, self.target)
        return bool(carried or poisoned or _MAY_WRITE.search(line))

    async def _ask(
        self, line: str, env: Mapping[str, str], pipelined: str | None, payload: str | None
    ) -> Verdict:
        copy = self.record.scope_copy(self.identity, self.target)
        return await self.ask(line, copy, dict(env), pipelined, payload)

    # --- exec ---------------------------------------------------------------------

    async def decide_exec(
        self, command: str, verdict: Verdict, env: Mapping[str, str], relay: Relay
    ) -> tuple[Verdict, str | None]:
        """(the verdict, a detail for the audit row); an internal error denies."""
        try:
            return await self._decide_exec(command, verdict, env, relay)
        except Exception:  # fail closed, loudly
            log.exception("judging carried files for %r failed; denying", command[:200])
            return FAILED, None

    async def _decide_exec(
        self, command: str, verdict: Verdict, env: Mapping[str, str], relay: Relay
    ) -> tuple[Verdict, str | None]:
        pipelined = pipelined_python(command)
        payload = None
        if pipelined is not None:  # the engine's opaque verdict is replaced by the payload's
            data, ended = await relay.pending_input(MAX_PAYLOAD, PIPELINE_TIMEOUT)
            detail = f"pipelined python code on stdin ({len(data)} bytes)"
            if not ended:
                why = f"more than {MAX_PAYLOAD} bytes" if len(data) > MAX_PAYLOAD else "no end"
                return not_understood(f"{detail} with {why} in {PIPELINE_TIMEOUT:.0f}s"), detail
            try:
                payload = data.decode("utf-8")
            except UnicodeDecodeError:
                return not_understood(f"{detail} that is not UTF-8"), detail
        elif not self._worth_asking(command):
            return verdict, None
        answer = await self._ask(command, env, pipelined, payload)
        if not isinstance(answer, CarriedVerdict):  # the worker failed or ran out of time
            return most_severe([verdict, answer]), None
        self._answer = answer
        if pipelined is not None:
            return answer, answer.detail
        if not answer.judged:
            return verdict, None
        return most_severe([verdict, answer]), answer.detail

    def exec_allowed(self, command: str, relay: Relay) -> None:
        """The exec runs now (its target not open yet): apply its effects, and follow what it
        writes."""
        answer = self._answer
        if answer is None:
            return  # nothing carried here, and nothing this command could write
        applied = Applied(self.record, self.identity, self.target, answer.effects)
        applied.before()
        captured = [
            self.record.begin(self.identity, self.target, path, via="stdin")
            for path in answer.stdin_files
        ]
        # The relay hands input that arrived before the target opened to the listeners when
        # it opens: these see all of the exec's stdin, in order.
        relay.listeners.attach(ExecFollower(applied, self.record, captured))
        if answer.scp is not None:
            self._follow_scp(answer.scp, relay)

    def _follow_scp(self, sink: tuple[str | None, bool], relay: Relay) -> None:
        destination, directory = sink
        if destination is None:
            why = "an scp upload to a path the bastion cannot know"
            self.record.poison(self.identity, self.target, why, spread=why)
            return
        upload = ScpUpload(
            self.record, self.identity, self.target, [destination], directory=directory
        )
        relay.listeners.attach(ScpUploadListener(upload))

    # --- shell lines and SFTP ------------------------------------------------------

    async def line(self, text: str, verdict: Verdict) -> Verdict:
        """A shell line: judged like an exec; unless denied, its effects are applied (there
        is no exit status per line, so only the worst case)."""
        if not self._worth_asking(text):
            return verdict
        try:
            answer = await self._ask(text, {}, None, None)
        except Exception:  # fail closed, loudly
            log.exception("judging carried files for a line failed; denying")
            return FAILED
        if not isinstance(answer, CarriedVerdict):
            return most_severe([verdict, answer])
        if answer.judged:
            verdict = most_severe([verdict, answer])
        if verdict.action != "deny":  # it may run (a review may approve it)
            Applied(self.record, self.identity, self.target, answer.effects).before()
        return verdict

    def typed(self, line: str, texts: Sequence[str] | None) -> None:
        """Lines typed at the shell into `cat > f` (or `tee f`, `dd of=f`) that `line`
        started: the bastion sent exactly these, each with Enter, so f holds their text
        (None: more was sent than the session keeps, so f's text is not known)."""
        resolver = Resolver(self.login, self.record.home(self.identity, self.target, self.login))
        paths = stdin_files(line, resolver)
        if texts is None:
            for path in paths:
                self.record.mark_unknown(
                    self.identity, self.target, path, "more typed into it than is kept", "stdin"
                )
            return
        data = "".join(text + "\n" for text in texts).encode("utf-8", "surrogateescape")
        sha256 = hashlib.sha256(data).hexdigest()
        content, why = describe_bytes(data, len(data), sha256)
        for path in paths:
            entry = CarriedFile(path, "stdin", len(data), sha256, content, why)
            self.record.put(self.identity, self.target, entry)

    def commands_ran(self, commands: tuple[str, ...]) -> None:
        """Equivalent commands of SFTP requests, once the SFTP watcher cannot follow."""
        resolver = Resolver(self.login, self.record.home(self.identity, self.target, self.login))
        for command in commands:
            effects = effects_of(analyse(command), resolver)
            Applied(self.record, self.identity, self.target, effects).before()

    def sftp_watcher(self) -> SftpWatcher:
        return SftpWatcher(
            self.record, self.identity, self.target, self.login, on_commands=self.commands_ran
        )


class ExecFollower(Listener):
    """Feeds captured stdin to its files; on exit 0 the exec's exact effects apply."""

    name = "carried-exec"

    def __init__(self, applied: Applied, record: CarriedFiles, captured: list[Writing]) -> None:
        self.applied = applied
        self.record = record
        self.captured = captured

    def on_input(self, event: Input) -> None:
        for writing in self.captured:
            writing.write(writing.size, event.data)

    def on_exit(self, event: Exit) -> None:
        ok = event.status == 0 and event.signal is None
        for writing in self.captured:
            self.record.finish(writing, ok=ok, why=f"the command exited {event.status}")
        if ok:
            self.applied.succeeded()
