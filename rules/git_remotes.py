"""Where a git push goes when the session changed it.

`git push origin main` is everyday; after `git remote set-url origin URL` (or
`remote add`, `config remote.origin.pushurl`, `-c remote.origin.url=`, `push
--repo=URL`) the same push sends the repository to a host the line named. A
remote whose URL the session set is remembered in the shell's state
(`ShellState.remotes`; a remote's URL lives in `.git/config`, a fact about the
host like the files written), so the push is held however the two are split
across the line or the session.
"""

from __future__ import annotations

import re

from rules.effects import Facts
from rules.values import Word, text_of

CHANGED_REMOTE = "push-to:remote-set-in-session"
_REMOTE_KEY = re.compile(r"^remote\.(?P<name>.+)\.(?:url|pushurl)$", re.I)


def _mark(facts: Facts, remote: str) -> None:
    facts.state.remotes.add(remote)


def _changed(facts: Facts, remote: str | None) -> bool:
    if remote is None:  # the branch's remote: any remote changed may be it
        return bool(facts.state.remotes)
    return remote in facts.state.remotes


def note_remote_change(facts: Facts, sub: str | None, words: list[str | Word]) -> None:
    """`git remote add|set-url NAME URL`, `git config remote.NAME.url URL`."""
    texts = [text_of(w) for w in words if not text_of(w).startswith("-")]
    texts = list(facts.parsed.node.path()[1:2]) + texts  # `remote add` as one subcommand
    if sub == "remote" and len(texts) >= 3 and texts[0] in ("add", "set-url"):
        _mark(facts, texts[1])
    elif sub == "config" and len(texts) >= 2:
        match = _REMOTE_KEY.match(texts[0])
        if match:
            _mark(facts, match.group("name"))


def push_destination(facts: Facts, words: list[str | Word], settings: list[str]) -> None:
    """Names CHANGED_REMOTE as the push's target when its remote's URL was set on the
    line (`-c remote.X.url=`, `--repo=URL`) or earlier in the session."""
    for setting in settings:
        match = _REMOTE_KEY.match(setting.partition("=")[0])
        if match:
            _mark(facts, match.group("name"))
    for given in facts.parsed.options:
        if given.spelling.startswith("--repo") and given.value is not None:
            facts.url(given.value)
            facts.targets.append(CHANGED_REMOTE)
    remote = text_of(words[0]) if words else None
    if remote is not None and ("://" in remote or "@" in remote):
        return  # a URL on the line: git-push-url judges it
    if _changed(facts, remote):
        facts.targets.append(CHANGED_REMOTE)
