"""The files the bastion carried to each target, so a later `sh f` is judged by what f holds.

    >>> record = CarriedFiles()
    >>> writing = record.begin("alice", "web1", "/home/deploy/run.sh", via="sftp")
    >>> writing.write(0, b"uptime\\n"); record.finish(writing)
    >>> record.get("alice", "web1", "/home/deploy/run.sh").content
    'uptime\\n'

Per identity and target (a "scope"), each path the bastion saw written (by
SFTP, legacy scp, or an exec's stdin into `cat > f`) maps to a CarriedFile:
its size and sha256, and its text when it is UTF-8 without NUL bytes and
at most MAX_CONTENT bytes. A file whose bytes the bastion could not follow
exactly (a partial or out-of-order write, two writers at once, a command
that changed it in ways the bastion cannot see) is kept with `content` and
`sha256` None: running it is "not understood", never allowed by default.

Paths are canonical as the target resolves them: absolute, or `~LOGIN/rel`
for a path relative to a login's home while that home is not known (once an
SFTP session tells it, those entries become absolute).

Bounds (oldest evicted first, whatever its state): MAX_FILES_PER_SCOPE
entries and MAX_BYTES_PER_SCOPE bytes per scope, MAX_FILES and MAX_BYTES in
all, MAX_SCOPES scopes; files being written buffer at most MAX_CONTENT each
and MAX_BUFFERED in all (past that a file keeps only its hash). The record
lives in this process's memory: with several nodes (or `serve --workers`)
each has its own, and a file carried through one is unknown to the others.
"""

from __future__ import annotations

import fnmatch
import hashlib
import posixpath
from collections import OrderedDict
from dataclasses import dataclass, replace

MAX_CONTENT = 1 << 20  # text kept per file
MAX_FILES_PER_SCOPE = 256
MAX_BYTES_PER_SCOPE = 6 << 20  # a scope's copy goes to a decision worker with the line
MAX_FILES = 4096
MAX_BYTES = 128 << 20
MAX_SCOPES = 1024
MAX_BUFFERED = 32 << 20  # bytes buffered by all files being written at once
MAX_PATH = 4096
ENTRY_OVERHEAD = 256  # bytes counted per entry besides its path and text

Scope = tuple[str, str]  # (identity, target)


@dataclass(frozen=True)
class CarriedFile:
    """What the bastion knows of one file it carried (or saw written)."""

    path: str
    via: str  # sftp | scp | stdin | command (written by a command, text unseen)
    size: int | None = None
    sha256: str | None = None
    content: str | None = None  # the text, when known exactly and small enough
    why: str | None = None  # why the text is not known

    @property
    def known(self) -> bool:
        return self.content is not None

    def unknown(self, why: str) -> CarriedFile:
        return replace(self, sha256=None, content=None, why=why)

    def cost(self) -> int:
        return ENTRY_OVERHEAD + len(self.path) + (len(self.content) if self.content else 0)


def describe_bytes(data: bytes, size: int, sha256: str) -> tuple[str | None, str | None]:
    """(text, None) for a small UTF-8 text file, else (None, why it is not kept)."""
    if size > MAX_CONTENT or len(data) != size:
        return None, f"larger than {MAX_CONTENT} bytes"
    if b"\0" in data:
        return None, "binary (NUL bytes)"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, "binary (not UTF-8)"


class Writing:
    """One file being written through the bastion: bytes must come in order from offset 0."""

    def __init__(self, record: CarriedFiles, scope: Scope, path: str, via: str, generation: int):
        self.scope = scope
        self.path = path
        self.via = via
        self.generation = generation
        self.size = 0
        self.failed: str | None = None
        self._record = record
        self._hash = hashlib.sha256()
        self._buffer: bytearray | None = bytearray()
        self.finished = False

    def write(self, offset: int, data: bytes) -> None:
        if self.failed is not None or self.finished:
            return
        if offset != self.size:
            self.fail(f"written out of order (offset {offset}, expected {self.size})")
            return
        self._hash.update(data)
        self.size += len(data)
        if self._buffer is not None:
            room = MAX_CONTENT + 1 - len(self._buffer)
            kept = data[:room]
            if not self._record.reserve(len(kept)):
                self._drop_buffer()
            else:
                self._buffer += kept

    def fail(self, why: str) -> None:
        if self.failed is None:
            self.failed = why
        self._drop_buffer()

    def _drop_buffer(self) -> None:
        if self._buffer is not None:
            self._record.release(len(self._buffer))
            self._buffer = None

    def result(self) -> CarriedFile:
        if self.failed is not None:
            return CarriedFile(self.path, self.via, self.size, None, None, self.failed)
        sha = self._hash.hexdigest()
        if self._buffer is None:
            why = (
                f"larger than {MAX_CONTENT} bytes"
                if self.size > MAX_CONTENT
                else "too much being written at once to keep"
            )
            return CarriedFile(self.path, self.via, self.size, sha, None, why)
        text, why = describe_bytes(bytes(self._buffer), self.size, sha)
        return CarriedFile(self.path, self.via, self.size, sha, text, why)

    def close(self) -> None:
        self.finished = True
        self._drop_buffer()


class _ScopeState:
    __slots__ = ("count", "bytes", "homes", "poisoned", "writers", "version", "paths")

    def __init__(self) -> None:
        self.paths: dict[str, None] = {}  # this scope's entries, oldest first
        self.version = 0  # bumped by every change, so a later exact update can tell
        self.count = 0
        self.bytes = 0
        self.homes: dict[str, str] = {}
        self.poisoned: str | None = None
        self.writers: dict[str, list[Writing]] = {}  # path -> writings in progress


class CarriedFiles:
    """The bounded record, shared by every session of this process (see the module doc)."""

    def __init__(
        self,
        *,
        max_files_per_scope: int = MAX_FILES_PER_SCOPE,
        max_bytes_per_scope: int = MAX_BYTES_PER_SCOPE,
        max_files: int = MAX_FILES,
        max_bytes: int = MAX_BYTES,
        max_scopes: int = MAX_SCOPES,
        max_buffered: int = MAX_BUFFERED,
    ) -> None:
        self.max_files_per_scope = max_files_per_scope
        self.max_bytes_per_scope = max_bytes_per_scope
        self.max_files = max_files
        self.max_bytes = max_bytes
        self.max_scopes = max_scopes
        self.max_buffered = max_buffered
        self._entries: OrderedDict[tuple[Scope, str], CarriedFile] = OrderedDict()
        self._scopes: OrderedDict[Scope, _ScopeState] = OrderedDict()
        self._generations: dict[tuple[Scope, str], int] = {}
        self._bytes = 0
        self._buffered = 0
        self.evicted = 0

    # --- reading --------------------------------------------------------------------

    def get(self, identity: str, target: str, path: str) -> CarriedFile | None:
        return self._entries.get(((identity, target), path))

    def paths(self, identity: str, target: str) -> list[str]:
        scope = (identity, target)
        state = self._scopes.get(scope)
        return list(state.paths) if state else []

    def matching(self, identity: str, target: str, pattern: str) -> list[str]:
        """Entries a glob (as the shell would expand it) names, or that lie under a directory."""
        found = []
        for path in self.paths(identity, target):
            if path == pattern or path.startswith(pattern.rstrip("/") + "/"):
                found.append(path)
            elif _has_glob(pattern) and fnmatch.fnmatchcase(path, pattern):
                found.append(path)
        return found

    def holds(self, identity: str, target: str, path: str) -> bool:
        """`path` is a carried file or a directory (or glob) naming one."""
        return bool(self.matching(identity, target, path))

    def files_for(self, identity: str, target: str, login: str) -> dict[str, CarriedFile]:
        """Every entry of a scope by the path a `login` session names it with (the engine's
        files context: absolute paths, and `~/rel` for the login's own home)."""
        prefix = f"~{login}"
        out = {}
        for path in self.paths(identity, target):
            entry = self._entries[((identity, target), path)]
            if path == prefix or path.startswith(prefix + "/"):
                out["~" + path[len(prefix) :]] = entry
            else:
                out[path] = entry
        return out

    def home(self, identity: str, target: str, login: str) -> str | None:
        state = self._scopes.get((identity, target))
        return state.homes.get(login) if state else None

    def version(self, identity: str, target: str) -> int:
        state = self._scopes.get((identity, target))
        return state.version if state else 0

    def poisoned(self, identity: str, target: str) -> str | None:
        """Why text carried here may have been copied to names the bastion cannot know."""
        state = self._scopes.get((identity, target))
        return state.poisoned if state else None

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    def scope_copy(self, identity: str, target: str) -> CarriedFiles:
        """A record holding only this scope (entries, homes, poisoning), for a decision worker:
        what judging a line reads, small enough to pickle (MAX_BYTES_PER_SCOPE)."""
        copy = CarriedFiles()
        scope = (identity, target)
        state = self._scopes.get(scope)
        if state is None:
            return copy
        mine = copy._state(scope)
        mine.homes = dict(state.homes)
        mine.poisoned = state.poisoned
        for path in state.paths:
            copy._store(scope, self._entries[(scope, path)])
        return copy

    # --- writing ----------------------------------------------------------------------

    def learn_home(self, identity: str, target: str, login: str, home: str) -> None:
        """The login's home directory (an SFTP server said it): `~LOGIN/x` entries move there."""
        home = posixpath.normpath(home)
        if not home.startswith("/") or len(home) > MAX_PATH:
            return
        scope = (identity, target)
        state = self._state(scope)
        if state.homes.get(login) == home:
            return
        state.homes[login] = home
        prefix = f"~{login}"
        for path in self.paths(identity, target):
            if path == prefix or path.startswith(prefix + "/"):
                self.move(identity, target, path, home + path[len(prefix) :])

    def begin(self, identity: str, target: str, path: str, *, via: str) -> Writing:
        """A write starts: until it finishes cleanly the path is carried but not understood."""
        scope = (identity, target)
        state = self._state(scope)
        generation = self._bump(scope, path)
        writing = Writing(self, scope, path, via, generation)
        others = state.writers.setdefault(path, [])
        for other in others:  # two writers at once: neither knows what the file holds
            other.fail("written by two writers at once")
            writing.fail("written by two writers at once")
        if len(others) < 64:
            others.append(writing)
        else:
            writing.fail("too many writers at once")
        self._store(scope, CarriedFile(path, via, None, None, None, "being written"))
        return writing

    def finish(self, writing: Writing, *, ok: bool = True, why: str | None = None) -> None:
        """The write ended (`ok`: the target said it succeeded and every byte was seen)."""
        if writing.finished:
            return
        if not ok:
            writing.fail(why or "the target did not confirm the write")
        scope, path = writing.scope, writing.path
        key = (scope, path)
        result = writing.result()
        writing.close()
        state = self._scopes.get(scope)
        if state is not None:
            writers = state.writers.get(path, [])
            if writing in writers:
                writers.remove(writing)
            if not writers:
                state.writers.pop(path, None)
        if self._generations.get(key) != writing.generation:
            failed = result.sha256 is None and result.why  # its own reason comes first
            result = result.unknown(failed or "changed while it was being written")
        self._store(scope, result)

    def put(self, identity: str, target: str, entry: CarriedFile) -> None:
        scope = (identity, target)
        self._state(scope)
        self._bump(scope, entry.path)
        self._store(scope, entry)

    def mark_unknown(self, identity: str, target: str, path: str, why: str, via: str) -> None:
        """A command wrote `path` without the bastion seeing the bytes."""
        current = self.get(identity, target, path)
        entry = current.unknown(why) if current else CarriedFile(path, via, why=why)
        self.put(identity, target, entry)

    def remove(self, identity: str, target: str, path: str) -> None:
        """`path` (and, for a directory, everything under it) is gone."""
        scope = (identity, target)
        for found in self.matching(identity, target, path):
            self._bump(scope, found)
            self._drop((scope, found))

    def move(self, identity: str, target: str, old: str, new: str) -> None:
        self._relink(identity, target, old, new, keep_old=False)

    def copy(self, identity: str, target: str, old: str, new: str) -> None:
        self._relink(identity, target, old, new, keep_old=True)

    def poison(self, identity: str, target: str, why: str, *, spread: str | None = None) -> None:
        """A command ran whose effect on files is unknown: nothing carried here is known now;
        with `spread` (why), their text may also have been copied anywhere (`poisoned`)."""
        scope = (identity, target)
        if not self.paths(identity, target):
            return
        state = self._state(scope)
        if spread:
            state.poisoned = state.poisoned or spread
        for path in self.paths(identity, target):
            entry = self._entries[(scope, path)]
            if entry.known or entry.sha256:
                self._bump(scope, path)
                self._store(scope, entry.unknown(why))

    # --- bookkeeping ---------------------------------------------------------------

    def reserve(self, size: int) -> bool:
        if self._buffered + size > self.max_buffered:
            return False
        self._buffered += size
        return True

    def release(self, size: int) -> None:
        self._buffered = max(0, self._buffered - size)

    def _relink(self, identity: str, target: str, old: str, new: str, *, keep_old: bool) -> None:
        scope = (identity, target)
        moved = []
        for found in self.matching(identity, target, old):
            if found != old and not found.startswith(old.rstrip("/") + "/"):
                continue  # a glob: the destination of each is not known
            entry = self._entries[(scope, found)]
            moved.append((found, new + found[len(old) :], entry))
        if not moved:  # replaced by a file the bastion does not know
            current = self._entries.get((scope, new))
            if current is not None:
                self._bump(scope, new)
                self._store(scope, current.unknown("replaced by a file the bastion did not carry"))
            return
        for found, destination, entry in moved:
            if not keep_old:
                self._bump(scope, found)
                self._drop((scope, found))
            self._bump(scope, destination)
            self._store(scope, replace(entry, path=destination))

    def _state(self, scope: Scope) -> _ScopeState:
        state = self._scopes.get(scope)
        if state is None:
            state = self._scopes[scope] = _ScopeState()
            while len(self._scopes) > self.max_scopes:
                oldest = next(iter(self._scopes))
                self._drop_scope(oldest)
        else:
            self._scopes.move_to_end(scope)
        return state

    def _drop_scope(self, scope: Scope) -> None:
        for path in self.paths(*scope):
            self._drop((scope, path))
            self.evicted += 1
        self._scopes.pop(scope, None)
        for key in [k for k in self._generations if k[0] == scope]:
            del self._generations[key]

    def _bump(self, scope: Scope, path: str) -> int:
        key = (scope, path)
        generation = self._generations.get(key, 0) + 1
        self._generations[key] = generation
        return generation

    def _store(self, scope: Scope, entry: CarriedFile) -> None:
        if len(entry.path) > MAX_PATH:
            return
        key = (scope, entry.path)
        self._drop(key)
        state = self._state(scope)
        self._entries[key] = entry
        cost = entry.cost()
        state.version += 1
        state.paths[entry.path] = None
        state.count += 1
        state.bytes += cost
        self._bytes += cost
        self._evict(scope, state)

    def _drop(self, key: tuple[Scope, str]) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        cost = entry.cost()
        self._bytes -= cost
        state = self._scopes.get(key[0])
        if state is not None:
            state.version += 1
            state.paths.pop(key[1], None)
            state.count -= 1
            state.bytes -= cost

    def _evict(self, scope: Scope, state: _ScopeState) -> None:
        while state.count > self.max_files_per_scope or state.bytes > self.max_bytes_per_scope:
            self._drop((scope, next(iter(state.paths))))
            self.evicted += 1
        while len(self._entries) > self.max_files or self._bytes > self.max_bytes:
            oldest = next(iter(self._entries))
            self._drop(oldest)
            self.evicted += 1


def _has_glob(word: str) -> bool:
    return any(c in word for c in "*?[")


UNKNOWN = "\u2039?\u203a"  # how the rules engine shows a part of a word it cannot know


def resolve(word: str, *, login: str, home: str | None, cwd: str | None = None) -> str | None:
    """The canonical path a word names when `login` runs a command in `cwd` (None: the home).

    None when the word cannot be known statically (a variable, a substitution).
    """
    if not word or len(word) > MAX_PATH or any(c in word for c in "$`\0\n") or UNKNOWN in word:
        return None
    if word.startswith("~"):
        head, _, rest = word[1:].partition("/")
        user = head or login
        if user == login and home is not None:
            base = home
        else:
            base = f"~{user}"
        return _normal(base, rest)
    if word.startswith("/"):
        return _normal("/", word)
    if cwd is None or cwd == "~":
        base = home if home is not None else f"~{login}"
    else:
        resolved = resolve(cwd, login=login, home=home)
        if resolved is None:
            return None
        base = resolved
    return _normal(base, word)


def _normal(base: str, rest: str) -> str | None:
    """`base/rest` with `.` and `..` folded (None when `..` climbs above a `~user` base)."""
    if base.startswith("~"):
        if not rest:
            return base
        folded = posixpath.normpath(rest.lstrip("/"))
        if folded == "..":
            return None
        if folded.startswith("../"):
            return None
        return base if folded == "." else f"{base}/{folded}"
    path = posixpath.normpath(posixpath.join(base, rest)) if rest else posixpath.normpath(base)
    return "/" + path.lstrip("/") if path.startswith("//") else path
