"""SQL handed to database clients, parsed with sqlglot into statement kinds.

    >>> sql_kinds("DrOp /* x */ DATABASE \\"prod\\"")
    ('drop_database',)

Kinds: drop_database, drop_schema, drop_table, drop_other, truncate,
delete_without_where, update_without_where, copy_to_stdout,
copy_to_program, copy_to_file, copy_from, copy_from_program, select_into_outfile, grant,
revoke, alter_user, create_user, alter_drop, create_code (functions,
procedures, triggers: bodies not analysed), server_file (pg_read_file,
lo_export, LOAD_FILE...), remote_sql (dblink, url(), s3()), server_control (pg_terminate_backend,
pg_cancel_backend: sessions ended), shell_escape, audit_off
(SET general_log = OFF, session_replication_role...), plus `select`,
`insert`, `other`. SQL that does not parse is opaque, never allowed by accident.
"""

from __future__ import annotations

import logging
import re

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

MAX_SQL = 64 * 1024
# sqlglot warns when it falls back to a raw Command (EXPLAIN, ALTER DATABASE...);
# that is an expected path here, handled below, not something to log per line.
logging.getLogger("sqlglot").setLevel(logging.ERROR)
_DIALECTS = ("postgres", "mysql", "sqlite")
# Dialect objects made once: sqlglot.parse(read=NAME) builds a new one per call.
_DIALECT = {name: Dialect.get_or_raise(name) for name in _DIALECTS}

# Client -> options whose value is SQL, and how a positional SQL argument is found.
_CLIENT_SQL_OPTIONS = {
    "psql": ("-c", "--command"),
    "mysql": ("-e", "--execute"),
    "mariadb": ("-e", "--execute"),
    "clickhouse-client": ("-q", "--query"),
    "cockroach": ("-e", "--execute"),
    "duckdb": ("-c",),
    "sqlite3": ("-cmd",),
    "cqlsh": ("-e", "--execute"),
}
_SQLITE_VALUE_OPTIONS = frozenset({"-cmd", "-separator", "-newline", "-nullvalue", "-init"})
_STDIN_CLIENTS = frozenset({"psql", "mysql", "mariadb", "sqlite3", "clickhouse-client", "duckdb"})
_MONGO = frozenset({"mongo", "mongosh"})
_MONGO_DANGER = (
    (".dropDatabase(", "drop_database"),
    (".drop(", "drop_table"),
    (".deleteMany({})", "delete_without_where"),
    (".remove({})", "delete_without_where"),
)
_REDIS_DANGER = {"flushall": "drop_database", "flushdb": "drop_database"}
SQL_CLIENTS = frozenset({*_CLIENT_SQL_OPTIONS, *_STDIN_CLIENTS, *_MONGO, "redis-cli"})
for _name in _DIALECTS:  # the first parse builds sqlglot's tables: not a line's cost
    _DIALECT[_name].parse("SELECT 1")


def sql_for_client(
    program: str, argv: tuple[str, ...], stdin_text: str | None
) -> tuple[tuple[str, ...], str | None]:
    """(statement kinds, opaque reason) for SQL this command hands a database."""
    if program not in SQL_CLIENTS:
        return (), None
    texts = _sql_texts(program, argv)
    if stdin_text is not None and program in _STDIN_CLIENTS:
        texts.append(stdin_text)
    if program in _MONGO:
        return _mongo(argv, stdin_text)
    if program == "redis-cli":
        return _redis(argv, stdin_text), None
    kinds: list[str] = []
    for text in texts:
        try:
            kinds.extend(sql_kinds(text))
        except ValueError as exc:
            return tuple(kinds), str(exc)
    return tuple(dict.fromkeys(kinds)), None


def sql_options_given(program: str, argv: tuple[str, ...]) -> bool:
    """Whether the client was given its statements on the command line (-c, -e, ...)."""
    return bool(_sql_texts(program, argv))


def _sql_texts(program: str, argv: tuple[str, ...]) -> list[str]:
    texts: list[str] = []
    options = _CLIENT_SQL_OPTIONS.get(program, ())
    args = list(argv[1:])
    for i, arg in enumerate(args):
        for option in options:
            if arg == option and i + 1 < len(args):
                texts.append(args[i + 1])
            elif option.startswith("--") and arg.startswith(option + "="):
                texts.append(arg.split("=", 1)[1])
            elif not option.startswith("--") and arg.startswith(option) and len(arg) > len(option):
                texts.append(arg[len(option) :])
    if program == "sqlite3":
        positionals = [
            a
            for i, a in enumerate(args)
            if not a.startswith("-") and not (i > 0 and args[i - 1] in _SQLITE_VALUE_OPTIONS)
        ]
        if len(positionals) >= 2:
            texts.append(" ".join(positionals[1:]))
    return texts


def _redis(argv: tuple[str, ...], stdin_text: str | None) -> tuple[str, ...]:
    """redis-cli commands, given as arguments or on its input: FLUSHALL/FLUSHDB drop data,
    CONFIG SET can make the server write files anywhere, EVAL runs Lua unseen."""
    words = [w.lower() for w in (*argv[1:], *(stdin_text or "").split())]
    kinds = {_REDIS_DANGER[w] for w in words if w in _REDIS_DANGER}
    if "config" in words and "set" in words:
        kinds.add("server_file")
    if any(w in ("eval", "evalsha", "eval_ro", "function", "fcall") for w in words):
        kinds.add("create_code")
    if "module" in words and "load" in words:
        kinds.add("server_file")
    return tuple(sorted(kinds))


def _mongo(argv: tuple[str, ...], stdin_text: str | None) -> tuple[tuple[str, ...], str | None]:
    code = " ".join(a for i, a in enumerate(argv[1:]) if i > 0 and argv[i] == "--eval")
    code += stdin_text or ""
    compact = re.sub(r"\s+", "", code)
    kinds = tuple(sorted({kind for token, kind in _MONGO_DANGER if token in compact}))
    return kinds, None


def sql_kinds(text: str, depth: int = 0) -> tuple[str, ...]:
    """Statement kinds in `text`; ValueError (with a reason) when it does not parse."""
    if len(text) > MAX_SQL:
        raise ValueError("SQL too long to analyse")
    kinds: list[str] = []
    statements = _psql_meta(text, kinds)
    if not statements.strip():
        return tuple(kinds)
    kinds.extend(_token_kinds(statements))
    last_error: Exception | None = None
    for dialect in _DIALECTS:
        try:
            parsed = _DIALECT[dialect].parse(statements)
        except sqlglot.errors.SqlglotError as exc:
            last_error = exc
            continue
        for statement in parsed:
            if isinstance(statement, exp.Expression):
                kinds.extend(_kinds(statement, dialect, depth))
        return tuple(dict.fromkeys(kinds))
    if _into_outfile(statements):
        return (*kinds, "select_into_outfile")  # MySQL syntax sqlglot does not parse; denied anyway
    raise ValueError(f"SQL does not parse ({type(last_error).__name__})")


# Settings that switch off logging, auditing or triggers for what follows.
_AUDIT_SETTINGS = frozenset(
    "general_log sql_log_bin log_bin slow_query_log log_statement log_min_duration_statement "
    "session_replication_role pgaudit.log log_connections log_disconnections audit_log "
    "log_error_verbosity".split()
)
_REMOTE_TABLE_FUNCTIONS = frozenset(
    "url s3 s3cluster remote remotesecure hdfs azureblobstorage".split()
)
_FILE_TABLE_FUNCTIONS = frozenset("file".split())


def _token_kinds(text: str) -> list[str]:
    """What a statement's tokens say whatever the dialect makes of it: SET of a logging
    setting, VACUUM INTO a file, INSERT INTO FUNCTION url(...) / s3(...)."""
    try:
        tokens = [t.text.lower() for t in _DIALECT["mysql"].tokenize(text)]
    except sqlglot.errors.SqlglotError:
        return []
    kinds: list[str] = []
    for position, token in enumerate(tokens):
        following = tokens[position + 1 : position + 4]
        if token in ("set", "alter") and any(
            f.strip("'\"`") in _AUDIT_SETTINGS for f in tokens[position + 1 : position + 6]
        ):
            kinds.append("audit_off")
        if token == "vacuum" and any(
            t.startswith("into") for t in tokens[position + 1 : position + 3]
        ):
            kinds.append("copy_to_file")  # VACUUM INTO 'file' writes a copy of the database
        if token in _REMOTE_TABLE_FUNCTIONS and following[:1] == ["("]:
            kinds.append("remote_sql")
        if (
            token in _FILE_TABLE_FUNCTIONS
            and following[:1] == ["("]
            and position > 0
            and (tokens[position - 1] in ("function", "from", "join", ","))
        ):
            kinds.append("server_file")
    return kinds


def _psql_meta(text: str, kinds: list[str]) -> str:
    """Handle psql backslash and sqlite3 dot commands; return the plain SQL that remains."""
    kept = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(".") and re.match(r"^\.[a-z]", stripped):
            command = stripped.split()[0].lower()
            if command in (".shell", ".system"):
                kinds.append("shell_escape")
            elif command in (".output", ".once", ".dump", ".save", ".backup", ".excel"):
                kinds.append("copy_to_file")
            continue
        if re.match(r"(?i)^(pager|system)\s+\S", stripped):
            kinds.append("shell_escape")  # mysql client commands: output to, or run, a command
            continue
        if stripped.startswith("\\"):
            lowered = stripped.lower()
            if lowered.startswith("\\!"):
                kinds.append("shell_escape")
            elif re.match(r"\\(o|out|g|gx|w|write)\b", lowered) and "|" in lowered:
                kinds.append("shell_escape")  # \o |cmd, \g |cmd: output piped to a command
            elif re.match(r"\\(o|out|w|write)\s+\S", lowered):
                kinds.append("copy_to_file")
            elif re.match(r"\\(i|ir|include|include_relative|gexec)\b", lowered):
                raise ValueError("psql runs SQL the bastion cannot see (\\i, \\gexec)")
            elif lowered.startswith("\\copy"):
                if " to " in f" {lowered} ":
                    kinds.append(
                        "copy_to_program"
                        if " program " in lowered
                        else "copy_to_stdout"
                        if "stdout" in lowered
                        else "copy_to_file"
                    )
            continue
        kept.append(line)
    return "\n".join(kept)


def _kinds(statement: exp.Expression, dialect: str, depth: int) -> list[str]:
    """The statement's own kind, then the kind of everything nested in it.

    Nested parts count: a data-modifying CTE (`WITH d AS (DELETE FROM t ...)
    SELECT ...`), `ALTER TABLE ... DROP COLUMN`, a server-side file function
    inside a SELECT, the statement after `EXPLAIN ANALYZE` (which runs it).
    """
    if isinstance(statement, exp.Command):
        return _command_kinds(statement, dialect, depth)
    kinds = [_kind(statement)]
    for node in statement.walk():
        if node is statement:
            continue
        if isinstance(node, (exp.Delete, exp.Update, exp.Drop, exp.TruncateTable, exp.Insert)):
            kinds.append(_kind(node))
        elif isinstance(node, exp.Table) and (
            node.name.lower() in _PASSWORD_TABLES
            or (node.name.lower() == "user" and node.db.lower() == "mysql")
        ):
            kinds.append("server_file")  # password hashes: as good as a server file
        elif isinstance(node, exp.Anonymous):
            function = str(node.name).lower()
            if function in _FILE_FUNCTIONS:
                kinds.append("server_file")
            elif function in _REMOTE_FUNCTIONS:
                kinds.append("remote_sql")
            elif function in _SERVER_CONTROL_FUNCTIONS:
                kinds.append("server_control")
    return kinds


def _filters(statement: exp.Expression) -> bool:
    """A WHERE that could leave rows out: not missing, not TRUE, not `1=1` or `'a'='a'`."""
    where = statement.args.get("where")
    condition = where.this if isinstance(where, exp.Where) else None
    if condition is None:
        return False
    if isinstance(condition, exp.Boolean):
        return not condition.this
    if isinstance(condition, exp.EQ) and isinstance(condition.left, exp.Literal):
        return condition.left != condition.right
    if isinstance(condition, exp.Literal) and not condition.is_string:
        return condition.name in ("0", "0.0")  # WHERE 1 is every row
    return True


def _kind(statement: exp.Expression) -> str:
    if isinstance(statement, exp.Drop):
        kind = str(statement.args.get("kind") or "").upper()
        return {"DATABASE": "drop_database", "SCHEMA": "drop_schema", "TABLE": "drop_table"}.get(
            kind, "drop_other"
        )
    if isinstance(statement, exp.TruncateTable):
        return "truncate"
    if isinstance(statement, exp.Delete):
        return "delete" if _filters(statement) else "delete_without_where"
    if isinstance(statement, exp.Update):
        return "update" if _filters(statement) else "update_without_where"
    if isinstance(statement, exp.Copy):
        if statement.args.get("kind"):
            files = statement.args.get("files") or []
            source = files[0] if files else None
            if isinstance(source, exp.Identifier) and source.name.lower() == "program":
                return "copy_from_program"  # runs a shell command on the database server
            return "copy_from"
        files = statement.args.get("files") or []
        target = files[0] if files else None
        name = target.name.lower() if isinstance(target, exp.Identifier) else ""
        if name == "stdout":
            return "copy_to_stdout"
        if name == "program":
            return "copy_to_program"
        return "copy_to_file"
    if isinstance(statement, exp.Grant):
        return "grant"
    if isinstance(statement, exp.Alter) and any(
        isinstance(node, exp.Drop) for node in statement.walk()
    ):
        return "alter_drop"
    if isinstance(statement, exp.Create):
        kind = str(statement.args.get("kind") or "").upper()
        return "create_code" if kind in _CODE_OBJECTS else "other"
    if isinstance(statement, exp.Select):
        return "select_into_outfile" if statement.args.get("into") else "select"
    if isinstance(statement, exp.Insert):
        return "insert"
    return "other"


def _command_kinds(statement: exp.Command, dialect: str, depth: int) -> list[str]:
    """Statements sqlglot keeps as raw text: known heads, EXPLAIN, else not understood."""
    head = statement.sql().strip().upper()
    word = head.split(" ", 1)[0]
    if word == "EXPLAIN":
        return ["other", *_explained_kinds(statement, dialect, depth)]
    for prefix, kind in (
        ("GRANT", "grant"),
        ("ALTER USER", "alter_user"),
        ("ALTER ROLE", "alter_user"),
        ("CREATE USER", "create_user"),
        ("CREATE ROLE", "create_user"),
        ("REVOKE", "revoke"),
        ("SELECT", "select_into_outfile"),
    ):
        if head.startswith(prefix):
            return [kind]
    if "INTO OUTFILE" in head or "INTO DUMPFILE" in head:
        return ["select_into_outfile"]
    if word not in _KNOWN_COMMANDS:
        raise ValueError(f"SQL statement {word[:20]!r} is not understood")
    return ["other"]


def _explained_kinds(statement: exp.Command, dialect: str, depth: int) -> tuple[str, ...]:
    """`EXPLAIN ANALYZE DELETE ...` runs the DELETE: judge the statement explained.

    The explained statement is found with sqlglot's tokenizer, after the
    options (ANALYZE, VERBOSE, a parenthesised list...). It is judged even
    without ANALYZE: cheaper than telling the dialects' option spellings apart,
    and the error is on the strict side.
    """
    rest = statement.expression.name if isinstance(statement.expression, exp.Literal) else ""
    if depth >= 2:
        raise ValueError("EXPLAIN nested too deeply")
    try:
        tokens = _DIALECT[dialect].tokenize(rest)
    except sqlglot.errors.SqlglotError as exc:
        raise ValueError(f"SQL does not parse ({type(exc).__name__})") from exc
    open_parens = 0
    previous = ""
    for token in tokens:
        text = token.text.upper()
        if text == "(":
            open_parens += 1
        elif text == ")":
            open_parens -= 1
        elif open_parens == 0 and text not in _EXPLAIN_OPTIONS and "=" not in (text, previous):
            return sql_kinds(rest[token.start :], depth + 1)
        previous = text
    return ()


def _into_outfile(text: str) -> bool:
    """`SELECT ... INTO OUTFILE|DUMPFILE`, read off sqlglot's tokens (MySQL only)."""
    try:
        words = [token.text.upper() for token in _DIALECT["mysql"].tokenize(text)]
    except sqlglot.errors.SqlglotError:
        return False
    return any(
        first == "INTO" and second in ("OUTFILE", "DUMPFILE")
        for first, second in zip(words, words[1:], strict=False)
    )


# CREATE of these runs code whose body is not analysed here.
_CODE_OBJECTS = frozenset({"FUNCTION", "PROCEDURE", "TRIGGER", "RULE", "EXTENSION"})
# Functions that read or write files on the database server, or run SQL elsewhere.
_FILE_FUNCTIONS = frozenset(
    {
        "pg_read_file",
        "pg_read_binary_file",
        "pg_ls_dir",
        "pg_stat_file",
        "pg_file_write",
        "lo_import",
        "lo_export",
        "load_file",
        "readfile",
        "writefile",
        "load_extension",
    }
)
_PASSWORD_TABLES = frozenset({"pg_authid", "pg_shadow", "pg_user_mapping"})
_REMOTE_FUNCTIONS = frozenset({"dblink", "dblink_exec", "dblink_send_query", "dblink_open"})
# Functions that end other sessions or stop the server's work.
_SERVER_CONTROL_FUNCTIONS = frozenset(
    {"pg_terminate_backend", "pg_cancel_backend", "pg_promote", "pg_wal_replay_pause"}
)
_EXPLAIN_OPTIONS = frozenset(
    {"ANALYZE", "ANALYSE", "VERBOSE", "EXTENDED", "PARTITIONS", "FORMAT", "QUERY", "PLAN"}
)

# Statements sqlglot keeps as raw commands that are known not to destroy or export data.
_KNOWN_COMMANDS = frozenset(
    "SHOW SET RESET VACUUM ANALYZE EXPLAIN BEGIN START COMMIT ROLLBACK SAVEPOINT RELEASE USE "
    "DESCRIBE DESC PRAGMA LISTEN NOTIFY UNLISTEN DISCARD CHECKPOINT REINDEX CLUSTER LOCK".split()
)
