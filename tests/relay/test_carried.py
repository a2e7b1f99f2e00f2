"""The record of carried files: what it keeps, how paths are named, its bounds, and what
commands do to it (bastion/relay/carried.py, carried_effects.py)."""

from __future__ import annotations

import hashlib

import pytest

from bastion.relay.carried import MAX_CONTENT, CarriedFiles, resolve
from bastion.relay.carried_commands import analyse
from bastion.relay.carried_effects import Applied, Resolver, effects_of

ID, TARGET = "alice", "web1"


def carry(record: CarriedFiles, path: str, data: bytes, *, identity: str = ID) -> None:
    writing = record.begin(identity, TARGET, path, via="sftp")
    writing.write(0, data)
    record.finish(writing)


def test_a_finished_write_keeps_size_hash_and_text() -> None:
    record = CarriedFiles()
    carry(record, "/srv/run.sh", b"uptime\n")
    entry = record.get(ID, TARGET, "/srv/run.sh")
    assert entry is not None and entry.known
    assert (entry.size, entry.sha256) == (7, hashlib.sha256(b"uptime\n").hexdigest())
    assert entry.content == "uptime\n" and entry.via == "sftp"


def test_scopes_are_per_identity_and_target() -> None:
    record = CarriedFiles()
    carry(record, "/srv/run.sh", b"uptime\n")
    assert record.get("bob", TARGET, "/srv/run.sh") is None
    assert record.get(ID, "web2", "/srv/run.sh") is None


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x7fELF\0\0\1", "binary"),
        (b"\xff\xfe not utf-8", "binary"),
        (b"#" * (MAX_CONTENT + 1), "larger than"),
    ],
)
def test_binary_or_big_files_keep_only_their_hash(data: bytes, why: str) -> None:
    record = CarriedFiles()
    carry(record, "/srv/blob", data)
    entry = record.get(ID, TARGET, "/srv/blob")
    assert entry is not None and not entry.known
    assert entry.sha256 == hashlib.sha256(data).hexdigest() and why in (entry.why or "")


def test_a_write_in_progress_or_out_of_order_is_not_understood() -> None:
    record = CarriedFiles()
    writing = record.begin(ID, TARGET, "/srv/run.sh", via="sftp")
    assert record.get(ID, TARGET, "/srv/run.sh").why == "being written"  # type: ignore[union-attr]
    writing.write(0, b"upt")
    writing.write(10, b"ime\n")  # a hole
    record.finish(writing)
    entry = record.get(ID, TARGET, "/srv/run.sh")
    assert entry is not None and entry.content is None and entry.sha256 is None
    assert "out of order" in (entry.why or "")


def test_a_write_the_target_did_not_confirm_is_not_understood() -> None:
    record = CarriedFiles()
    writing = record.begin(ID, TARGET, "/srv/run.sh", via="sftp")
    writing.write(0, b"uptime\n")
    record.finish(writing, ok=False, why="the close failed")
    assert record.get(ID, TARGET, "/srv/run.sh").why == "the close failed"  # type: ignore[union-attr]


def test_two_writers_at_once_leave_the_file_unknown() -> None:
    record = CarriedFiles()
    first = record.begin(ID, TARGET, "/srv/run.sh", via="sftp")
    second = record.begin(ID, TARGET, "/srv/run.sh", via="sftp")
    first.write(0, b"echo harmless\n")
    second.write(0, b"cat /etc/shadow\n")
    record.finish(second)
    record.finish(first)  # the last to finish must not win
    entry = record.get(ID, TARGET, "/srv/run.sh")
    assert entry is not None and not entry.known and "two writers" in (entry.why or "")


def test_a_change_during_a_write_leaves_it_unknown() -> None:
    record = CarriedFiles()
    writing = record.begin(ID, TARGET, "/srv/run.sh", via="sftp")
    writing.write(0, b"uptime\n")
    record.mark_unknown(ID, TARGET, "/srv/run.sh", "written by a command", via="command")
    record.finish(writing)
    assert not record.get(ID, TARGET, "/srv/run.sh").known  # type: ignore[union-attr]


def test_renames_move_entries_and_directories() -> None:
    record = CarriedFiles()
    carry(record, "/srv/a.sh", b"ls\n")
    carry(record, "/srv/dir/b.sh", b"id\n")
    record.move(ID, TARGET, "/srv/a.sh", "/srv/c.sh")
    assert record.get(ID, TARGET, "/srv/a.sh") is None
    assert record.get(ID, TARGET, "/srv/c.sh").content == "ls\n"  # type: ignore[union-attr]
    record.move(ID, TARGET, "/srv/dir", "/opt/dir")
    assert record.get(ID, TARGET, "/opt/dir/b.sh").content == "id\n"  # type: ignore[union-attr]
    carry(record, "/srv/x.sh", b"true\n")
    record.move(ID, TARGET, "/srv/not-carried", "/srv/x.sh")  # replaced by an unknown file
    assert not record.get(ID, TARGET, "/srv/x.sh").known  # type: ignore[union-attr]


def test_removal_drops_a_file_or_everything_under_a_directory() -> None:
    record = CarriedFiles()
    carry(record, "/srv/t/a.py", b"x")
    carry(record, "/srv/t/b.py", b"y")
    carry(record, "/srv/keep", b"z")
    record.remove(ID, TARGET, "/srv/t")
    assert record.paths(ID, TARGET) == ["/srv/keep"]


def test_home_relative_paths_become_absolute_once_the_home_is_known() -> None:
    record = CarriedFiles()
    carry(record, "~deploy/run.sh", b"ls\n")
    assert record.files_for(ID, TARGET, "deploy") == {
        "~/run.sh": record.get(ID, TARGET, "~deploy/run.sh")
    }
    record.learn_home(ID, TARGET, "deploy", "/home/deploy")
    assert record.paths(ID, TARGET) == ["/home/deploy/run.sh"]
    assert record.home(ID, TARGET, "deploy") == "/home/deploy"


def test_entries_are_bounded_per_scope_and_in_all_oldest_first() -> None:
    record = CarriedFiles(max_files_per_scope=3, max_files=5)
    for n in range(5):
        carry(record, f"/f{n}", b"x")
    assert record.paths(ID, TARGET) == ["/f2", "/f3", "/f4"]
    for n in range(3):
        carry(record, f"/g{n}", b"x", identity="bob")
    assert len(record) == 5
    assert record.paths(ID, TARGET) == ["/f3", "/f4"]  # the oldest went, whoever owned it
    assert record.evicted == 3


def test_entries_are_bounded_in_bytes() -> None:
    record = CarriedFiles(max_bytes_per_scope=3000, max_bytes=10**9)
    for n in range(4):
        carry(record, f"/f{n}", b"x" * 1000)
    assert record.paths(ID, TARGET) == ["/f2", "/f3"]
    assert record.bytes <= 3000


def test_files_being_written_buffer_within_a_bound() -> None:
    record = CarriedFiles(max_buffered=10)
    writing = record.begin(ID, TARGET, "/big", via="sftp")
    writing.write(0, b"0123456789abc")
    record.finish(writing)
    entry = record.get(ID, TARGET, "/big")
    assert entry is not None and entry.content is None and entry.sha256 is not None
    carry(record, "/small", b"ok")  # the buffer was given back
    assert record.get(ID, TARGET, "/small").content == "ok"  # type: ignore[union-attr]


def test_scopes_are_bounded() -> None:
    record = CarriedFiles(max_scopes=2)
    for identity in ("a", "b", "c"):
        carry(record, "/f", b"x", identity=identity)
    assert record.get("a", TARGET, "/f") is None and record.get("c", TARGET, "/f") is not None


@pytest.mark.parametrize(
    ("word", "home", "cwd", "path"),
    [
        ("run.sh", None, None, "~deploy/run.sh"),
        ("run.sh", "/home/deploy", None, "/home/deploy/run.sh"),
        ("~/run.sh", "/home/deploy", None, "/home/deploy/run.sh"),
        ("~bob/run.sh", "/home/deploy", None, "~bob/run.sh"),
        ("./a/../run.sh", None, None, "~deploy/run.sh"),
        ("/srv//x/./y", None, None, "/srv/x/y"),
        ("x", None, "/tmp", "/tmp/x"),
        ("../x", None, "/tmp/d", "/tmp/x"),
        ("~/../etc/x", None, None, None),  # climbs out of an unknown home
        ("$X/run.sh", None, None, None),
        ("`id`", None, None, None),
    ],
)
def test_resolve(word: str, home: str | None, cwd: str | None, path: str | None) -> None:
    assert resolve(word, login="deploy", home=home, cwd=cwd) == path


# --- what allowed commands do to the record ----------------------------------------------


def applied(record: CarriedFiles, line: str) -> Applied:
    resolver = Resolver("deploy", "/home/deploy")
    holds = lambda path: record.holds(ID, TARGET, path)  # noqa: E731
    effects = effects_of(analyse(line), resolver, (), holds)
    done = Applied(record, ID, TARGET, effects)
    done.before()
    return done


def test_rm_drops_entries_once_it_succeeded() -> None:
    record = CarriedFiles()
    carry(record, "/home/deploy/t/run.sh", b"ls\n")
    done = applied(record, "rm -rf t")
    assert not record.get(ID, TARGET, "/home/deploy/t/run.sh").known  # type: ignore[union-attr]
    done.succeeded()
    assert record.paths(ID, TARGET) == []


def test_mv_and_cp_carry_the_text_once_they_succeeded() -> None:
    record = CarriedFiles()
    carry(record, "/home/deploy/a.sh", b"ls\n")
    applied(record, "cp a.sh /srv/b.sh").succeeded()
    assert record.get(ID, TARGET, "/srv/b.sh").content == "ls\n"  # type: ignore[union-attr]
    applied(record, "mv -f /srv/b.sh /srv/c.sh").succeeded()
    assert record.get(ID, TARGET, "/srv/b.sh") is None
    assert record.get(ID, TARGET, "/srv/c.sh").content == "ls\n"  # type: ignore[union-attr]


def test_a_failed_copy_leaves_the_destination_unknown() -> None:
    record = CarriedFiles()
    carry(record, "/home/deploy/a.sh", b"ls\n")
    carry(record, "/srv/b.sh", b"id\n")
    applied(record, "cp a.sh /srv/b.sh")  # never succeeded
    assert not record.get(ID, TARGET, "/srv/b.sh").known  # type: ignore[union-attr]


def test_redirections_and_tee_mark_their_files_unknown() -> None:
    record = CarriedFiles()
    carry(record, "/home/deploy/run.sh", b"ls\n")
    applied(record, "echo 'cat /etc/shadow' >> run.sh")
    assert not record.get(ID, TARGET, "/home/deploy/run.sh").known  # type: ignore[union-attr]
    applied(record, "printf x | tee new.sh")
    assert record.get(ID, TARGET, "/home/deploy/new.sh").via == "command"  # type: ignore[union-attr]


def test_commands_that_leave_files_alone_change_nothing() -> None:
    record = CarriedFiles()
    carry(record, "/home/deploy/run.sh", b"ls\n")
    for line in ("chmod u+x run.sh && sleep 0", "cat run.sh | grep ls", "echo ~deploy",
                 "( umask 77 && mkdir -p /home/deploy/.ansible/tmp )"):  # fmt: skip
        applied(record, line)
    assert record.get(ID, TARGET, "/home/deploy/run.sh").known  # type: ignore[union-attr]
    assert record.poisoned(ID, TARGET) is None


def test_an_unknown_program_poisons_and_naming_a_carried_file_spreads() -> None:
    record = CarriedFiles()
    carry(record, "/home/deploy/run.sh", b"ls\n")
    applied(record, "make all")
    assert not record.get(ID, TARGET, "/home/deploy/run.sh").known  # type: ignore[union-attr]
    assert record.poisoned(ID, TARGET) is None  # it named no carried file
    carry(record, "/home/deploy/run.sh", b"ls\n")
    applied(record, "tar cf x.tar run.sh")
    assert "tar" in (record.poisoned(ID, TARGET) or "")


def test_a_link_spreads() -> None:
    record = CarriedFiles()
    carry(record, "/home/deploy/run.sh", b"ls\n")
    applied(record, "ln -s run.sh other.sh")
    assert record.poisoned(ID, TARGET) is not None
