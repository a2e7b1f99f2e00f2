"""Reading a command's words against its catalog node, as getopt would.

    >>> from rules.catalog import CATALOG
    >>> parsed = parse(CATALOG.program("rm"), ["-rf", "--", "build", "-x"])
    >>> [(o.option.names[-1], o.value) for o in parsed.options], parsed.positionals
    ([('--recursive', None), ('--force', None)], [('build', 'D'), ('-x', 'D')])

Short options cluster (`-rf`), a short option's value may be attached
(`-ofile`) or the next word, long options take `=VALUE` or the next word,
GNU programs accept unambiguous abbreviations (`--rec`), `--` ends the
options, and subcommands are read from the first positional word. A word
that fits none of this is a reason the command is not understood.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rules.catalog.model import ArgSpec, Node, Option
from rules.model import Reason
from rules.values import ANY, UNKNOWN, Word, may_be_option, text_of

MAX_ARGS = 2048
_NO_FLAGS: frozenset[str] = frozenset()


@dataclass(slots=True)
class Given:
    """An option as given on the line."""

    option: Option
    spelling: str
    value: str | Word | None
    values: tuple[str | Word, ...] = ()


@dataclass(slots=True)
class Parsed:
    node: Node
    options: list[Given] = field(default_factory=list)
    positionals: list[tuple[str | Word, str]] = field(default_factory=list)
    rest: list[str | Word] | None = None  # words of a command it runs (kind c)
    rest_kind: str = "c"
    reasons: list[Reason] = field(default_factory=list)
    unknown_count: bool = False  # an unknown word may stand for several (counts unknown)

    @property
    def flags(self) -> frozenset[str]:
        if not self.options:
            return _NO_FLAGS
        found: set[str] = set()
        for given in self.options:
            found.update(given.option.bare)
        return frozenset(found)


def parse(node: Node, words: list[str | Word]) -> Parsed:
    parsed = Parsed(node)
    current = node
    positional_words: list[str | Word] = []
    options_done = False
    i = 0
    count = len(words)
    if count > MAX_ARGS:
        parsed.reasons.append(Reason(node.name, f"more than {MAX_ARGS} arguments"))
        return parsed
    while i < count:
        word = words[i]
        i += 1
        plain = word if type(word) is str else None
        if not options_done and plain is not None and plain.startswith("-") and len(plain) > 1:
            if plain == "--":
                options_done = True
                if current.options_first is False and _rest_after_dashes(current):
                    positional_words.extend(words[i:])
                    break
                continue
            i = _option(parsed, current, plain, words, i)
            rest = parsed.options[-1].option.rest if parsed.options else None
            if rest is not None:
                if rest == "c":
                    parsed.rest = list(words[i:])
                    break
                options_done = True
            continue
        if (
            not options_done
            and plain is not None
            and plain.startswith("+")
            and current.option(plain)
        ):
            i = _option(parsed, current, plain, words, i)
            continue
        if (
            not options_done
            and plain is None
            and type(word) is Word
            and _known_option_part(current, word)
        ):
            i = _unknown_option(parsed, current, word, words, i)  # -p"$PW", --tag=$VERSION
            continue
        if not options_done and plain is None and may_be_option(word):
            if current.has_risky_options():
                parsed.reasons.append(
                    Reason(text_of(word), "a word of unknown value where it could be an option")
                )
        if plain is not None and not positional_words and current.subs:
            sub = current.subs.get(plain)
            if sub is not None:
                current = sub
                parsed.node = sub
                continue
            if current.needs_sub:
                parsed.reasons.append(Reason(plain, f"not a known subcommand of {_name(current)}"))
                return parsed
        elif plain is None and not positional_words and current.subs and current.needs_sub:
            parsed.reasons.append(Reason(text_of(word), "the subcommand is not known"))
            return parsed
        positional_words.append(word)
        if type(word) is not str and word.splits:  # type: ignore[union-attr]
            parsed.unknown_count = True
        spec = _rest_spec(current, len(positional_words))
        if spec is not None:
            parsed.rest = [*positional_words[-1:], *words[i:]]
            parsed.rest_kind = spec
            positional_words.pop()
            break
        if current.options_first:
            options_done = True
    _assign(parsed, current, positional_words)
    return parsed


def _known_option_part(node: Node, word: Word) -> bool:
    """`-p‹?›`, `--tag=‹?›`: a known option whose value is the unknown part."""
    text = word.text
    if not text.startswith("-") or UNKNOWN in text[:2]:
        return False
    if text.startswith("--"):
        name, eq, _ = text.partition("=")
        return bool(eq) and UNKNOWN not in name and node.option(name) is not None
    option = node.option(text[:2])
    return option is not None and option.value is not None and not node.posix


def _unknown_option(parsed: Parsed, node: Node, word: Word, words: list[str | Word], i: int) -> int:
    text = word.text
    if text.startswith("--"):
        name, _, rest = text.partition("=")
    else:
        name, rest = text[:2], text[2:]
    option = node.option(name)
    assert option is not None
    value = Word(rest, None, word.unknown, word.splits)
    if word.splits:
        parsed.reasons.append(
            Reason(text_of(word), "an unquoted value of unknown text may become several words")
        )
    parsed.options.append(Given(option, name, value, (value,)))
    return i


def _name(node: Node) -> str:
    path = node.path()
    root = node
    while root.parent is not None:
        root = root.parent
    return " ".join((root.name, *path))


def _rest_after_dashes(node: Node) -> bool:
    return False


def _rest_spec(node: Node, position: int) -> str | None:
    """Whether the positional at `position` (1-based) starts a command (kind c)."""
    specs = node.args
    if not specs:
        return None
    index = 0
    seen = 0
    for spec in specs:
        if spec.kind == "c":
            return "c" if seen + 1 == position else None
        if spec.many:
            return None
        seen += 1
        index += 1
        if seen >= position:
            return None
    return None


def _option(parsed: Parsed, node: Node, word: str, words: list[str | Word], i: int) -> int:
    """Read one option word (and its value); returns the index of the next word."""
    if len(word) > 2 and not node.posix and not word.startswith(("--", "+")):
        # a spelling the program declares whole (`-destroy`, `-name`) is that option
        option = node.option(word)
        if option is not None:
            return _take_value(parsed, option, word, "", "", words, i)
    if word.startswith("--") or node.posix or word.startswith("+"):
        option = node.option(word)
        if option is not None:
            return _take_value(parsed, option, word, "", "", words, i)
        name, eq, attached = word.partition("=")
        option = node.option(name) if eq else None
        if option is None and word.startswith("--"):
            option = node.abbreviation(name)
        if option is not None:
            return _take_value(parsed, option, name, eq, attached, words, i)
        if word.startswith("--") or not (len(word) == 2 or not node.posix):
            if node.numeric and word[1:].isdigit():
                parsed.options.append(Given(_NUMBER, word, word[1:]))
            elif not _lenient(node):
                parsed.reasons.append(Reason(word, f"not an option {_name(node)} is known to take"))
            elif _guess(node) and word.startswith("--"):
                guessed = Option((name,), "v")
                if eq:
                    parsed.options.append(Given(guessed, name, attached))
                elif i < len(words) and not (
                    type(words[i]) is str and str(words[i]).startswith("-")
                ):
                    parsed.options.append(Given(guessed, name, words[i], (words[i],)))
                    return i + 1
                else:
                    parsed.options.append(Given(Option((name,)), name, None))
            return i
    # short options: a cluster of letters, the last of which may take a value
    if node.numeric and (word[1:].isdigit() or _SIGNAL.fullmatch(word[1:])):
        parsed.options.append(Given(_NUMBER, word, word[1:]))  # -5, -9, -HUP, -SIGTERM
        return i
    position = 1
    while position < len(word):
        letter = "-" + word[position]
        option = node.option(letter)
        if option is None:
            if node.numeric and word[position].isdigit():
                parsed.options.append(Given(_NUMBER, word, word[position:]))
                return i
            if not _lenient(node):
                parsed.reasons.append(
                    Reason(
                        word if len(word) == 2 else f"{letter} in {word}",
                        f"not an option {_name(node)} is known to take",
                    )
                )
            position += 1
            continue
        position += 1
        if option.value is not None:
            attached = word[position:]
            if attached.startswith("=") and option.optional:
                attached = attached[1:]
            return _take_value(
                parsed, option, letter, "=" if attached else "", attached, words, i, short=True
            )
        parsed.options.append(Given(option, letter, None))
    return i


_NUMBER = Option(("-NUM",), "n")
_SIGNAL = re.compile(
    r"(SIG)?(HUP|INT|QUIT|ILL|TRAP|ABRT|IOT|BUS|FPE|KILL|USR1|SEGV|USR2|PIPE|ALRM|TERM|STKFLT|"
    r"CHLD|CONT|STOP|TSTP|TTIN|TTOU|URG|XCPU|XFSZ|VTALRM|PROF|WINCH|IO|POLL|PWR|SYS|RTMIN|"
    r"RTMAX)([+-]\d+)?"
)


def _guess(node: Node) -> bool:
    current: Node | None = node
    while current is not None:
        if current.guess_values:
            return True
        current = current.parent
    return False


def _lenient(node: Node) -> bool:
    current: Node | None = node
    while current is not None:
        if current.lenient:
            return True
        current = current.parent
    return False


def _take_value(
    parsed: Parsed,
    option: Option,
    name: str,
    eq: str,
    attached: str,
    words: list[str | Word],
    i: int,
    *,
    short: bool = False,
) -> int:
    if option.value is None:
        if eq and not short:
            parsed.reasons.append(Reason(f"{name}={attached}", "this option takes no value"))
        parsed.options.append(Given(option, name, None))
        return i
    if eq:
        parsed.options.append(Given(option, name, attached))
        return i
    if option.optional or option.attached:
        parsed.options.append(Given(option, name, None))
        return i
    if i + option.values > len(words):
        parsed.reasons.append(Reason(name, "the option's value is missing"))
        parsed.options.append(Given(option, name, None))
        return len(words)
    values = tuple(words[i : i + option.values])
    value = values[0]
    if type(value) is not str and value.splits:  # type: ignore[union-attr]
        parsed.reasons.append(
            Reason(text_of(value), "an unquoted value of unknown text may become several words")
        )
    parsed.options.append(Given(option, name, value, values))
    return i + option.values


def _assign(parsed: Parsed, node: Node, words: list[str | Word]) -> None:
    """Give each positional its kind from the node's argument pattern."""
    specs = _effective_args(parsed, node)
    if specs is not None and parsed.rest is not None:
        cut = next((i for i, s in enumerate(specs) if s.kind == "c"), len(specs))
        specs = specs[:cut]
    if specs is None:
        parsed.positionals = [(w, "v") for w in words]
        return
    kinds = match_args(specs, len(words))
    if kinds is None:
        if parsed.unknown_count or not node.args_exact or _lenient(node):
            # fig's counts are loose, and a lenient program's unknown options may take values
            kinds = _spread(specs, len(words))
        else:
            parsed.reasons.append(
                Reason(
                    " ".join(text_of(w) for w in words[:4]) or _name(node),
                    f"{_name(node)} does not take {len(words)} argument"
                    + ("s" if len(words) != 1 else "")
                    + " here",
                )
            )
            kinds = _spread(specs, len(words))
    parsed.positionals = list(zip(words, kinds, strict=True))


def _effective_args(parsed: Parsed, node: Node) -> tuple[ArgSpec, ...] | None:
    for given in reversed(parsed.options):
        if given.option.args is not None:
            from rules.catalog import parse_args

            return parse_args(given.option.args, node.name)
    return node.args


def match_args(specs: tuple[ArgSpec, ...], count: int) -> list[str] | None:
    """Kinds for `count` positionals: fixed items from both ends, the variadic in between."""
    fixed_before: list[ArgSpec] = []
    variadic: ArgSpec | None = None
    fixed_after: list[ArgSpec] = []
    for spec in specs:
        if spec.many and variadic is None:
            variadic = spec
        elif variadic is None:
            fixed_before.append(spec)
        else:
            fixed_after.append(spec)
    required = sum(1 for s in fixed_before + fixed_after if s.required)
    if variadic is not None and variadic.required:
        required += 1
    if count < required:
        return None
    optional_slots = [s for s in fixed_before + fixed_after if not s.required]
    if variadic is None and count > len(fixed_before) + len(fixed_after):
        return None
    kinds: list[str] = []
    spare = count - required
    before: list[str] = []
    for spec in fixed_before:
        if spec.required or spare > 0:
            if not spec.required:
                spare -= 1
            before.append(spec.kind)
    after: list[str] = []
    for spec in fixed_after:
        if spec.required or spare > 0:
            if not spec.required:
                spare -= 1
            after.append(spec.kind)
    middle = count - len(before) - len(after)
    if middle < 0:
        return None
    if variadic is None and middle:
        return None
    kinds = before + [variadic.kind if variadic else "v"] * middle + after
    del optional_slots
    return kinds


def _spread(specs: tuple[ArgSpec, ...], count: int) -> list[str]:
    """Kinds when the count does not fit: every kind the pattern names, the strictest
    first (each word is read as each kind it might be)."""
    kinds = [s.kind for s in specs] or ["v"]
    return [kinds[min(i, len(kinds) - 1)] for i in range(count)]


__all__ = ["Given", "Parsed", "parse", "match_args", "ANY"]
