"""Each listener with plain events: recording, accounting, masking as a transform."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bastion.alert_sink import AlertSink
from bastion.alerts import AlertDetector, AlertThresholds
from bastion.audit import AuditEntry, AuditLog
from bastion.masking import MaskingConfig
from bastion.recordings import open_recording_store
from bastion.recordings.config import RecordingsConfig
from bastion.relay.accounting import Accounting
from bastion.relay.events import Decided, Exit, Input, Output, Resize, Stream
from bastion.relay.masking import MaskingTransform, describe_event
from bastion.relay.recording import RecordingListener, RecordingMeta, open_recording
from bastion.session_log import SessionLog, SessionOpened
from bastion.store import open_store
from recorder import read_cast

META = RecordingMeta("s1", "agent", "web1", "deploy", "exec", "cat big")


def record(
    tmp_path: Path, meta: RecordingMeta, feed, config: RecordingsConfig | None = None
) -> Path:
    """Feed a RecordingListener over a real local recording store; the file it wrote."""

    async def go() -> Path:
        store = open_store(f"sqlite://{tmp_path / 'r.db'}", node="test", create=True)
        await store.open()
        recordings = open_recording_store(config or RecordingsConfig(), tmp_path, store, "test")
        await recordings.start()
        sink = open_recording(recordings, meta, width=80, height=24, on_failure=print)
        feed(RecordingListener(sink, kind=meta.kind))
        await recordings.stop()
        await store.close()
        return Path(recordings.location(meta.session_id))

    return asyncio.run(go())


def test_the_recording_holds_what_the_agent_saw_typed_and_resized(tmp_path: Path) -> None:
    def feed(listener: RecordingListener) -> None:
        listener.on_input(Input(b"ls\r"))
        listener.on_output(Output(b"[MASKED:email]\r\n", Stream.STDOUT, b"jane@example.com\r\n"))
        listener.on_resize(Resize(100, 30))
        listener.on_decision(Decided("line", "cat /etc/shadow", "deny", "credential-read"))
        listener.on_decision(Decided("line", "ls", "allow", None))
        listener.on_exit(Exit(0, None, None))

    meta = RecordingMeta("s1", "agent", "web1", "deploy", "shell", None)
    cast = read_cast(record(tmp_path, meta, feed))
    kinds = [(e.kind, e.data) for e in cast.events]
    assert ("i", "ls\r") in kinds and ("r", "100x30") in kinds
    assert ("m", "deny: credential-read") in kinds and ("m", "allow: None") not in kinds
    assert "".join(d for k, d in kinds if k == "o") == "[MASKED:email]\r\n"  # never the raw bytes


def test_exec_stdin_is_recorded_up_to_its_bound_then_counted(tmp_path: Path) -> None:
    limit = RecordingsConfig().max_input_bytes
    chunk = b"x" * 65536

    def feed(listener: RecordingListener) -> None:
        for _ in range(limit // len(chunk) + 2):
            listener.on_input(Input(chunk))
        listener.on_exit(Exit(0, None, None))

    events = read_cast(record(tmp_path, META, feed)).events
    recorded = sum(len(e.data) for e in events if e.kind == "i")
    assert recorded == limit
    assert any(e.kind == "m" and e.data == "input not recorded: 131072 bytes" for e in events)


def test_sftp_bytes_are_not_recorded_as_a_screen(tmp_path: Path) -> None:
    def feed(listener: RecordingListener) -> None:
        listener.on_input(Input(b"\x00\x00\x00\x05\x01\x00\x00\x00\x03"))
        listener.on_output(Output(b"binary", Stream.STDOUT, b"binary"))
        listener.on_exit(Exit(0, None, None))

    meta = RecordingMeta("s2", "agent", "web1", "deploy", "subsystem", "sftp")
    assert read_cast(record(tmp_path, meta, feed)).events == []


def test_an_abandoned_recording_closes_its_file(tmp_path: Path) -> None:
    def feed(listener: RecordingListener) -> None:
        listener.abandon()
        listener.on_output(Output(b"after", Stream.STDOUT, b"after"))  # turned off: ignored

    assert read_cast(record(tmp_path, META, feed)).events == []


def test_accounting_writes_each_commands_bytes_and_the_sessions(tmp_path: Path) -> None:
    async def go() -> tuple[list, object]:
        store = open_store(f"sqlite://{tmp_path / 'b.db'}", node="test", create=True)
        await store.open()
        try:
            alerts = AlertSink(store, AlertDetector(AlertThresholds(output_bytes=10)))
            audit = AuditLog(store, on_entry=alerts.audited)
            sessions = SessionLog(store, alerts)
            await sessions.opened(
                SessionOpened(
                    "s1", "agent", 1, "deploy", "web1", "shell", None, None, time.time(), None
                )
            )
            accounting = Accounting(
                audit, sessions, alerts, session_id="s1", identity="agent", target="web1"
            )
            first = await audit.record(
                AuditEntry("line", identity="agent", session_id="s1", command="ls")
            )
            accounting.command_started(first, exits=False)
            accounting.on_input(Input(b"ls\r"))
            accounting.on_output(Output(b"a.txt b.txt c.txt\r\n", Stream.STDOUT, b""))
            second = await audit.record(
                AuditEntry("line", identity="agent", session_id="s1", command="pwd")
            )
            accounting.command_started(second, exits=False)
            accounting.on_output(Output(b"/home\r\n", Stream.STDOUT, b""))
            accounting.on_exit(Exit(0, None, None))
            await audit.drain()
            await sessions.drain()
            await alerts.drain()
            rows = await store.list_audit(session_id="s1")
            return rows, await store.get_session("s1"), await store.list_alerts()
        finally:
            await store.close()

    rows, session, alerts = asyncio.run(go())
    by_command = {row.command: row for row in rows}
    assert by_command["ls"].bytes_out == 19 and by_command["ls"].bytes_in == 3
    assert (
        by_command["pwd"].bytes_out == 7 and by_command["pwd"].exit_status is None
    )  # a line has none
    assert session.bytes_out == 26 and session.bytes_in == 3 and session.exit_status == 0
    assert any(a.kind == "output-volume" for a in alerts)


def test_masking_as_a_transform_masks_holds_and_reports() -> None:
    found: list[dict] = []
    events: list = []
    stopped: list[bool] = []
    transform = MaskingTransform(
        MaskingConfig(binary="pass").channel(),  # binary passed through is what is reported
        on_found=lambda counts: found.append(dict(counts)),
        on_events=events.extend,
        on_stopped=lambda: stopped.append(True),
    )
    sent = transform.feed(Stream.STDOUT, b"key AKIAIOSFODNN7EXAMPLE done\npartial jane@exa")
    # the address that may be starting is held; what precedes it on the line may go at once
    assert b"AKIAIOSFODNN7EXAMPLE" not in sent and b"jane@exa" not in sent
    assert transform.release_at() is not None
    rest = b"".join(data for _, data in transform.flush())
    assert b"jane@exa" in rest or b"MASKED" in rest
    transform.feed(Stream.STDOUT, b"\x00\x01\x02\x03" * 64 + b"AKIAIOSFODNN7EXAMPLE\n")
    transform.flush()
    transform.on_exit(Exit(0, None, None))
    assert found and sum(sum(c.values()) for c in found) >= 1
    kinds = {describe_event(e)[0] for e in events}
    assert "binary-output" in kinds and "unmasked-secret" in kinds and not stopped


def test_a_secret_in_binary_output_stops_the_channel_when_the_policy_says_close() -> None:
    stopped: list[bool] = []
    transform = MaskingTransform(
        MaskingConfig(binary="close").channel(),
        on_found=lambda counts: None,
        on_events=lambda events: None,
        on_stopped=lambda: stopped.append(True),
    )
    sent = transform.feed(Stream.STDOUT, b"\x00\x01\x02\x03" * 64 + b"AKIAIOSFODNN7EXAMPLE\n")
    transform.flush()
    assert stopped == [True] and b"AKIAIOSFODNN7EXAMPLE" not in sent


def test_a_file_transfer_is_scanned_never_modified_and_what_goes_through_is_reported() -> None:
    events: list = []
    transform = MaskingTransform(
        MaskingConfig().channel(transfer=True),
        on_found=lambda counts: None,
        on_events=events.extend,
        on_stopped=lambda: None,
    )
    data = b"AWS_KEY=AKIAIOSFODNN7EXAMPLE\n" * 3
    sent = transform.feed(Stream.STDOUT, data) + b"".join(d for _, d in transform.flush())
    transform.on_exit(Exit(0, None, None))
    assert sent == data
    assert {describe_event(e)[0] for e in events} == {"unmasked-secret"}
    assert sum(e.count for e in events) == 3
