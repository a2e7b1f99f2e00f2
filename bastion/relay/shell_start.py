"""How the bastion starts the target's interactive shell: no editing of its own, prompt marks.

Instead of a plain `shell` request, the bastion asks the target to run

    exec bash --noediting --noprofile --norc +o histexpand +o history -i

with a pty whose modes it sets itself (`TERM_MODES`: no echo, since the
bastion's editor echoes; the standard special characters, never the
agent's). bash 5.2 (Debian 12) then reads plain lines with no readline,
keeps no history (so `fc`, `history` and `!` have nothing to work on),
and reads no rc file: `~/.bashrc`, `~/.bash_profile` and `/etc/bash.bashrc`
would run code the bastion never sees, and could bind keys or change the
prompt. What they set (aliases, functions, PATH additions, the prompt) is
therefore not set.

The bastion then types one setup line (never echoed, never in any history):
it defines a read-only function that PROMPT_COMMAND runs before every
prompt, makes the prompt variables, histchars, INPUTRC and the pager
variables read-only (LESSSECURE=1, no LESSOPEN), and turns echo off again
in case the server ignored the pty modes. The function:

1. prints `OSC 133;D;<status>;bastion=<nonce>` (the last command's exit status),
2. reads lines from the terminal until the bastion's sync line `<nonce>:<token>`:
   whatever was typed ahead into the terminal and not read by the program it
   was meant for is read here and dropped, never run,
3. prints `OSC 133;A;bastion=<nonce>;t=<token>`, the visible prompt
   (`user@host:~$ `), and `OSC 133;B;bastion=<nonce>`.

The nonce lives only in that function's body: not in a variable, not in
the environment, not on any command line; the scanner
(bastion/relay/prompt_marks.py) cuts it out of all output; lines that would
print the function are refused (bastion/relay/shell_guard.py). The token
is new for each prompt. No C mark (PS0) is used: the bastion knows when a
command starts, because it sent it; PS0 would cost a fork per command.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import asyncssh

UPSTREAM_COMMAND = "exec bash --noediting --noprofile --norc +o histexpand +o history -i"
FUNCTION = "__bastion_prompt"
EXIT_NOT_FOUND = 127
DISABLED = 255  # a special character that is turned off

TERM_MODES: tuple[tuple[int, int], ...] = (
    (asyncssh.PTY_VINTR, 0x03),
    (asyncssh.PTY_VQUIT, 0x1C),
    (asyncssh.PTY_VERASE, 0x7F),
    (asyncssh.PTY_VKILL, 0x15),
    (asyncssh.PTY_VEOF, 0x04),
    (asyncssh.PTY_VEOL, DISABLED),
    (asyncssh.PTY_VEOL2, DISABLED),
    (asyncssh.PTY_VSTART, 0x11),
    (asyncssh.PTY_VSTOP, 0x13),
    (asyncssh.PTY_VSUSP, 0x1A),
    (asyncssh.PTY_VREPRINT, 0x12),
    (asyncssh.PTY_WERASE, 0x17),
    (asyncssh.PTY_VLNEXT, 0x16),
    (asyncssh.PTY_VDISCARD, 0x0F),
    (asyncssh.PTY_IGNPAR, 0),
    (asyncssh.PTY_ISTRIP, 0),
    (asyncssh.PTY_INLCR, 0),
    (asyncssh.PTY_IGNCR, 0),
    (asyncssh.PTY_ICRNL, 1),
    (asyncssh.PTY_IUCLC, 0),
    (asyncssh.PTY_IXON, 0),
    (asyncssh.PTY_IXANY, 0),
    (asyncssh.PTY_IXOFF, 0),
    (asyncssh.PTY_IUTF8, 1),
    (asyncssh.PTY_ISIG, 1),
    (asyncssh.PTY_ICANON, 1),
    (asyncssh.PTY_XCASE, 0),
    (asyncssh.PTY_ECHO, 0),
    (asyncssh.PTY_ECHONL, 0),
    (asyncssh.PTY_NOFLSH, 0),
    (asyncssh.PTY_TOSTOP, 0),
    (asyncssh.PTY_IEXTEN, 1),
    (asyncssh.PTY_PENDIN, 0),
    (asyncssh.PTY_OPOST, 1),
    (asyncssh.PTY_OLCUC, 0),
    (asyncssh.PTY_ONLCR, 1),
    (asyncssh.PTY_OCRNL, 0),
    (asyncssh.PTY_CS8, 1),
    (asyncssh.PTY_PARENB, 0),
)

_PROMPT_FUNCTION = r"""{fn}() {{ local s=$? l w=$PWD c='$'; printf '\033]133;D;%s;bastion={n}\007' "$s"; while IFS= read -rs l; do [[ $l == *'{n}:'* ]] && break; done; [[ -n $HOME && $HOME != / && ( $w == "$HOME" || $w == "$HOME"/* ) ]] && w="~${{w#"$HOME"}}"; w=${{w//[[:cntrl:]]/?}}; ((EUID)) || c='#'; printf '\033]133;A;bastion={n};t=%s\007%s@%s:%s%s \033]133;B;bastion={n}\007' "${{l##*'{n}:'}}" "${{USER:-$LOGNAME}}" "${{HOSTNAME%%.*}}" "$w" "$c"; return "$s"; }}"""
_SETTINGS = (
    "stty -echo 2>/dev/null; HISTFILE=/dev/null; PS0=''; PS1=''; PS2='> '; PS3='#? '; "
    "PS4='+ '; INPUTRC=/dev/null; EDITRC=/dev/null; LESSSECURE=1; PAGER=less; MANPAGER=less; "
    "export INPUTRC EDITRC LESSSECURE PAGER MANPAGER; unset LESSOPEN LESSCLOSE BASH_XTRACEFD; "
    "readonly -f {fn}; PROMPT_COMMAND={fn}; readonly PS0 PS1 PS2 PS3 PS4 PROMPT_COMMAND "
    "HISTFILE histchars INPUTRC EDITRC LESSSECURE LESSOPEN LESSCLOSE PAGER MANPAGER BASH_XTRACEFD"
)


@dataclass(frozen=True)
class ShellStart:
    """One session's shell start: its nonce, the command, the setup line."""

    nonce: str
    command: str = UPSTREAM_COMMAND
    term_modes: tuple[tuple[int, int], ...] = TERM_MODES

    @property
    def setup(self) -> bytes:
        function = _PROMPT_FUNCTION.format(fn=FUNCTION, n=self.nonce)
        return (function + "; " + _SETTINGS.format(fn=FUNCTION) + "\n").encode("ascii")

    def sync_line(self, token: str) -> bytes:
        """What the bastion types when the shell asks (a D mark): ends the drain, names the prompt."""
        return f"{self.nonce}:{token}\n".encode("ascii")


def new_shell_start() -> ShellStart:
    return ShellStart(nonce=secrets.token_hex(16))


def new_token() -> str:
    return secrets.token_hex(8)


def not_started_reason(target: str, status: int | None) -> str:
    """The one line the agent reads when the shell ended before its first prompt."""
    if status == EXIT_NOT_FOUND:
        return (
            f"bastion: target {target} has no bash; an interactive shell through the bastion "
            "needs bash (use exec requests)"
        )
    how = f"exit status {status}" if status is not None else "no exit status"
    return f"bastion: the shell on target {target} ended before its first prompt ({how})"
