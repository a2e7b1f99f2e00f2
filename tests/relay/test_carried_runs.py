"""Runs of carried files are judged by content (bastion/relay/carried_runs.py), and Ansible's
pipelining form waits for its stdin (bastion/relay/carried_session.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bastion.decide import Verdict
from bastion.relay.carried import CarriedFiles
from bastion.relay.carried_commands import analyse
from bastion.relay.carried_runs import CarriedJudge, file_runs, judge_exec, shebang_kind
from bastion.relay.carried_session import Carriage, pipelined_python
from bastion.relay.listeners import Listeners
from bastion.relay.relay import Relay
from rules import Request, default_policy, evaluate

ID, TARGET, LOGIN, HOME = "alice", "web1", "deploy", "/home/deploy"


def decide(line: str) -> Verdict:
    found = evaluate([default_policy()], Request(line))
    rule = found.rule or (None if found.action.value == "allow" else "default-action")
    return Verdict(found.action.value, rule, found.reason)


def carried(files: dict[str, str | bytes]) -> CarriedFiles:
    record = CarriedFiles()
    record.learn_home(ID, TARGET, LOGIN, HOME)
    for path, text in files.items():
        writing = record.begin(ID, TARGET, path, via="sftp")
        writing.write(0, text.encode() if isinstance(text, str) else text)
        record.finish(writing)
    return record


def judge(record: CarriedFiles, line: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    found = CarriedJudge(record, decide, identity=ID, target=TARGET, login=LOGIN, env=env).judge(
        line
    )
    return found.verdict


GOOD = f"{HOME}/good.sh"
BAD = f"{HOME}/bad.sh"


@pytest.fixture
def record() -> CarriedFiles:
    return carried({GOOD: "uptime\nls -la /srv\n", BAD: "echo hi\ncat /etc/shadow\n"})


@pytest.mark.parametrize(
    "line",
    ["sh bad.sh", "bash ~/bad.sh", "dash -e ./bad.sh", ". bad.sh", "source /home/deploy/bad.sh",
     "sh < bad.sh", "cd /home/deploy && sh bad.sh", "sh b?d.sh", "sudo -u root sh bad.sh",
     "env X=1 bash -x bad.sh arg", "sh -- bad.sh"],
)  # fmt: skip
def test_every_way_of_running_a_carried_script_judges_its_content(
    record: CarriedFiles, line: str
) -> None:
    verdict = judge(record, line)
    assert verdict is not None and verdict.action == "deny" and verdict.rule == "credential-read"
    assert "bad.sh" in verdict.reason


def test_allowed_content_is_allowed(record: CarriedFiles) -> None:
    assert judge(record, "sh good.sh").action == "allow"  # type: ignore[union-attr]


def test_a_line_that_runs_no_carried_file_gets_nothing_added(record: CarriedFiles) -> None:
    for line in ("uptime", "sh -c 'ls'", "cat bad.sh", "python3 -m http.server", "sh other.sh"):
        assert judge(record, line) is None, line


def test_exec_of_a_carried_file_follows_its_shebang() -> None:
    record = carried({
        f"{HOME}/s": "#!/bin/sh\ncat /etc/shadow\n",
        f"{HOME}/n": "cat /etc/shadow\n",
        f"{HOME}/p": "#!/usr/bin/env python3\nprint(open('/etc/shadow').read())\n",
    })  # fmt: skip
    assert judge(record, "./s").rule == "credential-read"  # type: ignore[union-attr]
    assert judge(record, "/home/deploy/n").rule == "credential-read"  # type: ignore[union-attr]
    assert judge(record, "./p").rule == "not-understood"  # type: ignore[union-attr]
    assert shebang_kind("#!/usr/bin/env -S bash -e\n") == "shell"
    assert shebang_kind("#!/usr/bin/awk -f\n") == "#!awk"


def test_other_interpreters_code_is_not_understood() -> None:
    record = carried({f"{HOME}/x.py": "print(1)\n", f"{HOME}/x.pl": "print 1;\n"})
    for line in ("python3 x.py", "python3.11 -u x.py", "perl x.pl"):
        verdict = judge(record, line)
        assert verdict is not None and verdict.rule == "not-understood", line


def test_carried_but_unknown_content_is_not_understood() -> None:
    record = carried({f"{HOME}/bin.sh": b"\x7fELF\0", f"{HOME}/big.sh": "#" * (2 << 20)})
    for line in ("sh bin.sh", "./big.sh"):
        verdict = judge(record, line)
        assert verdict is not None and verdict.rule == "not-understood"
        assert "cannot judge" in verdict.reason


def test_a_path_that_cannot_be_known_where_files_were_carried(record: CarriedFiles) -> None:
    assert judge(record, "sh $SCRIPT").rule == "not-understood"  # type: ignore[union-attr]
    assert judge(CarriedFiles(), "sh $SCRIPT") is None  # nothing carried: the engine's call


def test_after_carried_text_may_have_spread_every_script_run_is_not_understood(
    record: CarriedFiles,
) -> None:
    record.poison(ID, TARGET, "tar", spread="tar named bad.sh")
    assert judge(record, "sh other.sh").rule == "not-understood"  # type: ignore[union-attr]
    assert judge(record, "/usr/bin/uptime") is None  # system programs are not scripts it copied


def test_carried_scripts_running_carried_scripts() -> None:
    record = carried({f"{HOME}/a.sh": "sh b.sh\n", f"{HOME}/b.sh": "cat /etc/shadow\n"})
    assert judge(record, "sh a.sh").rule == "credential-read"  # type: ignore[union-attr]
    loop = carried({f"{HOME}/a.sh": "sh a.sh\n"})
    assert judge(loop, "sh a.sh").rule == "not-understood"  # type: ignore[union-attr]


def test_file_runs_finds_script_operands() -> None:
    def runs(line: str) -> list[tuple[str, str]]:
        return [(r.word, r.kind) for c in analyse(line) for r in file_runs(c)]

    assert runs("bash -o pipefail x.sh a") == [("x.sh", "shell")]
    assert runs("python3 -W ignore -u x.py") == [("x.py", "python")]
    assert runs("python3 -c 'print(1)'") == [] and runs("sh -c ls") == []
    assert runs("./run") == [("./run", "exec")]


# --- Ansible, uploaded -----------------------------------------------------------------


@pytest.fixture
def payloads(ansible_payloads: dict[str, str]) -> dict[str, str]:
    return ansible_payloads


def test_an_uploaded_module_is_judged_by_its_arguments(payloads: dict[str, str]) -> None:
    tmp = f"{HOME}/.ansible/tmp/ansible-tmp-1"
    record = carried({f"{tmp}/AnsiballZ_ping.py": payloads["ping"]})
    run = f"/bin/sh -c '/usr/bin/python3 {tmp}/AnsiballZ_ping.py && sleep 0'"
    assert judge(record, run).action == "allow"  # type: ignore[union-attr]
    assert judge(record, run.replace(".py &&", ".py execute &&")).rule == "not-understood"  # type: ignore[union-attr]
    assert judge(record, run, env={"PYTHONPATH": "/tmp"}).rule == "not-understood"  # type: ignore[union-attr]


def test_a_module_beside_a_file_python_would_import_first(payloads: dict[str, str]) -> None:
    tmp = f"{HOME}/.ansible/tmp/ansible-tmp-2"
    record = carried(
        {f"{tmp}/AnsiballZ_ping.py": payloads["ping"], f"{tmp}/datetime.py": "import os\n"}
    )
    verdict = judge(record, f"python3 {tmp}/AnsiballZ_ping.py")
    assert (
        verdict is not None and verdict.rule == "not-understood" and "datetime.py" in verdict.reason
    )


def test_an_edited_module_is_not_understood(payloads: dict[str, str]) -> None:
    tmp = f"{HOME}/t"
    edited = payloads["ping"].replace("import os\n", "import os\n    os.system('id')\n", 1)
    record = carried({f"{tmp}/AnsiballZ_ping.py": edited})
    verdict = judge(record, f"python3 {tmp}/AnsiballZ_ping.py")
    assert verdict is not None and verdict.rule == "not-understood" and "vouch" in verdict.reason


# --- Ansible, pipelined ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/usr/bin/python3", "true"),
        ("/bin/sh -c '/usr/bin/python3 && sleep 0'", "/bin/sh -c 'true && sleep 0'"),
        ("/bin/sh -c 'python3.11'", "/bin/sh -c 'true'"),
        (
            "/bin/sh -c 'sudo -H -S -n  -u root /bin/sh -c '\"'\"'echo BECOME-SUCCESS-abc ; "
            "/usr/bin/python3'\"'\"' && sleep 0'",
            "/bin/sh -c 'sudo -H -S -n  -u root /bin/sh -c '\"'\"'echo BECOME-SUCCESS-abc ; "
            "true'\"'\"' && sleep 0'",
        ),
        ("/bin/sh -c '/usr/bin/python3 '&&' sleep 0'", None),
        ("cat /etc/passwd | python3", None),
        ("python3 -", None),
        ("/bin/sh -c 'head -c 10; /usr/bin/python3'", None),
        (
            "/bin/sh -c 'sudo -H -S -u root /bin/sh -c '\"'\"'echo BECOME-SUCCESS-x ; python3'\"'\"''",
            None,
        ),
    ],
)
def test_pipelining_forms(command: str, expected: str | None) -> None:
    assert pipelined_python(command) == expected


class Agent:
    def write(self, data: bytes) -> None: ...
    def write_stderr(self, data: bytes) -> None: ...
    def write_eof(self) -> None: ...
    def exit(self, status: int) -> None: ...
    def exit_with_signal(self, *args: object) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...


def carriage(record: CarriedFiles) -> Carriage:
    """A Carriage whose decision worker is this process: the pool's workers run judge_exec
    with their Decider; here the default pack decides (the pool itself is tested apart)."""

    async def ask(line, copy, env, pipelined, payload):  # type: ignore[no-untyped-def]
        return judge_exec(
            decide, copy, identity=ID, target=TARGET, login=LOGIN, command=line, env=env,
            pipelined=pipelined, payload=payload,
        )  # fmt: skip

    return Carriage(record, ask, identity=ID, target=TARGET, login=LOGIN)


def test_a_pipelined_module_is_decided_once_its_stdin_ended(payloads: dict[str, str]) -> None:
    async def scenario(payload: str) -> Verdict:
        relay = Relay(Agent(), Listeners(), pty=False)  # a plain agent end, no target yet
        command = "/bin/sh -c '/usr/bin/python3 && sleep 0'"
        engine = decide(command)
        assert engine.action == "review"  # opaque to the engine on its own
        deciding = asyncio.ensure_future(
            carriage(CarriedFiles()).decide_exec(command, engine, {}, relay)
        )
        data = payload.encode()
        for start in range(0, len(data), 65536):
            relay.from_agent(data[start : start + 65536])
            await asyncio.sleep(0)
        assert not deciding.done()  # waits for the end of stdin
        relay.agent_eof()
        verdict, detail = await asyncio.wait_for(deciding, 10)
        assert detail and "pipelined" in detail
        assert relay.pending_bytes() == data  # nothing was taken off the way to the target
        return verdict

    assert asyncio.run(scenario(payloads["ping"])).action == "allow"
    args = payloads["command"].replace(
        '"_raw_params": "uptime"', '"_raw_params": "cat /etc/shadow"'
    )
    assert asyncio.run(scenario(args)).rule == "credential-read"
    assert asyncio.run(scenario("import os\nos.system('id')\n")).rule == "not-understood"


def test_a_pipelined_stdin_that_never_ends_is_not_understood(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import bastion.relay.carried_session as session

    monkeypatch.setattr(session, "PIPELINE_TIMEOUT", 0.2)

    async def scenario() -> Verdict:
        relay = Relay(Agent(), Listeners(), pty=False)
        relay.from_agent(b"#!/usr/bin/python3\n")
        verdict, _ = await carriage(CarriedFiles()).decide_exec(
            "/usr/bin/python3", decide("/usr/bin/python3"), {}, relay
        )
        return verdict

    verdict = asyncio.run(scenario())
    assert verdict.rule == "not-understood" and "no end" in verdict.reason


def test_the_decision_workers_judge_carried_files(tmp_path: Path) -> None:
    """Through the real pool: a worker process gets the scope's copy and answers."""
    from harness import make_state

    from bastion.decisions.pool import DecisionPool
    from bastion.identity.model import Identity
    from bastion.relay.carried_runs import CarriedVerdict
    from bastion.targets import Target

    agent = Identity(ID, (LOGIN,), (), 1, 2e9)
    web1 = Target(TARGET, "127.0.0.1", 22, host_key="ssh-ed25519 AAAA")
    record = carried({BAD: "cat /etc/shadow\n"})

    async def go() -> Verdict:
        pool = DecisionPool(make_state(tmp_path / "state").root, workers=1)
        await pool.start()
        try:
            copy = record.scope_copy(ID, TARGET)
            return await pool.carried(agent, web1, LOGIN, "sh bad.sh", copy, {})
        finally:
            await pool.close()

    verdict = asyncio.run(go())
    assert isinstance(verdict, CarriedVerdict) and verdict.judged
    assert verdict.rule == "credential-read" and "runs carried" in (verdict.detail or "")
