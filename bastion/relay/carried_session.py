"""One channel's side of the carried-files record: judge what it runs, follow what it writes.

ChannelSession (bastion/relay/session.py) asks a Carriage three things:

- `decide_exec`: the engine's verdict on an exec, made more severe when the
  exec runs a file the bastion carried (bastion/relay/carried_runs.py), and
  replaced when the exec is Ansible's pipelining form (`/bin/sh -c
  '/usr/bin/python3 && sleep 0'`): then the whole of stdin is awaited
  (bounded in bytes and time; nothing reaches the target meanwhile) and the
  AnsiballZ payload on it decided;
- `exec_allowed`: the exec will run: what it may write is applied to the
  record, and listeners follow `scp -t` uploads, `cat > f`/`tee f`/`dd of=f`
  fed from the agent's stdin, and its exit status (exact effects on 0);
- `line`, for a shell line, and `sftp_watcher` for an SFTP channel.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping

from bastion.ansible.ansiballz import MAX_PAYLOAD, looks_like_ansiballz
from bastion.decide import Verdict
from bastion.relay.carried import CarriedFiles, Writing
from bastion.relay.carried_effects import Applied, Effects, effects_of, stdin_targets
from bastion.relay.carried_runs import CarriedJudge, Judgement, most_severe, not_understood
from bastion.relay.events import Exit, Input
from bastion.relay.listeners import Listener
from bastion.relay.relay import Relay
from bastion.relay.scp_sink import ScpUpload, ScpUploadListener
from bastion.relay.sftp_carry import SftpWatcher
from rules import analyse

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


class Carriage:
    def __init__(
        self,
        record: CarriedFiles,
        decide: Callable[[str], Verdict],
        *,
        identity: str,
        target: str,
        login: str,
    ) -> None:
        self.record = record
        self.decide = decide
        self.identity = identity
        self.target = target
        self.login = login
        self._judgement: Judgement | None = None

    def judge(self, env: Mapping[str, str] | None = None) -> CarriedJudge:
        return CarriedJudge(
            self.record,
            self.decide,
            identity=self.identity,
            target=self.target,
            login=self.login,
            env=env,
        )

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
        judge = self.judge(env)
        substituted = pipelined_python(command)
        if substituted is not None:
            return await self._pipelined(judge, substituted, relay)
        judgement = judge.judge(command)
        self._judgement = judgement
        if judgement.verdict is None:
            return verdict, None
        return most_severe([verdict, judgement.verdict]), judgement.detail

    async def _pipelined(
        self, judge: CarriedJudge, substituted: str, relay: Relay
    ) -> tuple[Verdict, str | None]:
        data, ended = await relay.pending_input(MAX_PAYLOAD, PIPELINE_TIMEOUT)
        detail = f"pipelined python code on stdin ({len(data)} bytes)"
        if not ended:
            why = f"more than {MAX_PAYLOAD} bytes" if len(data) > MAX_PAYLOAD else "no end"
            return not_understood(f"{detail} with {why} in {PIPELINE_TIMEOUT:.0f}s"), detail
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return not_understood(f"{detail} that is not UTF-8"), detail
        if not looks_like_ansiballz(text):
            return not_understood(f"{detail} that is not an Ansible module"), detail
        effects = Effects()
        notes: list[str] = [detail]
        home = self.record.home(self.identity, self.target, self.login) or f"~{self.login}"
        module = judge.ansible(text, home, effects, notes)  # python runs in the home directory
        wrapper = judge.judge(substituted)
        effects.merge(wrapper.effects)
        self._judgement = Judgement(module, effects, notes)
        verdicts = [module, self.decide(substituted)]
        if wrapper.verdict is not None:
            verdicts.append(wrapper.verdict)
        return most_severe(verdicts), "; ".join(notes)[:1000]

    def exec_allowed(self, command: str, relay: Relay) -> None:
        """The exec runs now (its target not open yet): apply its effects, and follow what it
        writes, from the input the relay buffered so far on."""
        judgement = self._judgement or self.judge().judge(command)
        applied = Applied(self.record, self.identity, self.target, judgement.effects)
        applied.before()
        captured = self._stdin_capture(command)
        upload = self._scp_upload(command)
        early = relay.pending_bytes()
        follower = ExecFollower(applied, self.record, captured)
        if early:
            follower.on_input(Input(early))
        relay.listeners.attach(follower)
        if upload is not None:
            if early:
                upload.source(early)
            relay.listeners.attach(ScpUploadListener(upload))

    def _stdin_capture(self, command: str) -> list[Writing]:
        """`cat > f`, `tee f`, `dd of=f`: the agent's stdin becomes f's bytes."""
        commands = analyse(command)
        if len(commands) != 1 or ">>" in command:
            return []
        only = commands[0]
        if only.opaque or only.reads or only.cwd or only.open_args:
            return []
        resolver = self.judge().resolver
        if only.program == "cat" and only.argv in (("cat",), ("cat", "-")):
            if len(only.writes) != 1:
                return []
            paths = [resolver.path(only.writes[0])]
        elif only.program in ("tee", "dd") and not only.writes:
            found, append = stdin_targets(only, resolver)
            if found is None or append:
                return []
            paths = list(found)
        else:
            return []
        if any(p is None for p in paths):
            return []
        return [self.record.begin(self.identity, self.target, p, via="stdin") for p in paths if p][
            :16
        ]

    def _scp_upload(self, command: str) -> ScpUpload | None:
        """`scp -t [-d] [-r] [-p] [-v] [--] DEST`: the sink of a legacy scp upload."""
        commands = analyse(command)
        if len(commands) != 1 or commands[0].program != "scp" or commands[0].opaque:
            return None
        words = list(commands[0].argv[1:])
        flags: set[str] = set()
        while words and words[0].startswith("-") and words[0] != "--":
            flags.update(words.pop(0)[1:])
        if words and words[0] == "--":
            words.pop(0)
        if "t" not in flags or not flags <= set("tdrpvq") or len(words) != 1:
            return None
        destination = self.judge().resolver.path(words[0])
        if destination is None:
            self.record.poison(
                self.identity, self.target, "an scp upload to a path the bastion cannot know",
                spread="an scp upload to a path the bastion cannot know",
            )  # fmt: skip
            return None
        return ScpUpload(
            self.record, self.identity, self.target, [destination], directory="d" in flags
        )

    # --- shell lines and SFTP ------------------------------------------------------

    def line(self, text: str, verdict: Verdict) -> Verdict:
        """A shell line: judged like an exec; unless denied, its effects are applied (there
        is no exit status per line, so only the worst case)."""
        try:
            judgement = self.judge().judge(text)
        except Exception:  # fail closed, loudly
            log.exception("judging carried files for a line failed; denying")
            return FAILED
        if judgement.verdict is not None:
            verdict = most_severe([verdict, judgement.verdict])
        if verdict.action != "deny":  # it may run (a review may approve it)
            Applied(self.record, self.identity, self.target, judgement.effects).before()
        return verdict

    def commands_ran(self, commands: tuple[str, ...]) -> None:
        """Equivalent commands of SFTP requests, once the SFTP watcher cannot follow."""
        resolver = self.judge().resolver
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
