"""Ansible modules as the commands with the same reach, and how the default pack meets them."""

from __future__ import annotations

import pytest

from bastion.ansible.ansiballz import AnsibleModule
from bastion.ansible.modules import MODULES, NotUnderstood, module_commands
from rules import Request, default_policy, evaluate


def module(module_name: str, internal: dict | None = None, /, **args: object) -> AnsibleModule:
    return AnsibleModule(module_name, args, internal or {}, "2.19.14", "/usr/bin/python3")


def commands(module_name: str, /, **args: object) -> tuple[str, ...]:
    return module_commands(module(module_name, None, **args)).commands


def decision(line: str) -> tuple[str, str | None]:
    found = evaluate([default_policy()], Request(line))
    return found.action.value, found.rule


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    [
        ("ping", {}, ("true",)),
        ("ping", {"data": "pong"}, ("true",)),
        ("setup", {"gather_subset": ["all"]}, ("cat -- /etc/os-release",)),
        ("stat", {"path": "/etc/passwd", "get_checksum": True}, ("stat -- /etc/passwd",)),
        ("slurp", {"src": "/etc/shadow"}, ("cat -- /etc/shadow",)),
        ("command", {"_raw_params": "uptime"}, ("uptime",)),
        ("command", {"argv": ["ls", "-l", "a b"]}, ("ls -l 'a b'",)),
        ("command", {"_raw_params": "ls", "chdir": "/srv"}, ("cd -- /srv && ls",)),
        ("command", {"_raw_params": "echo a | cat", "_uses_shell": True}, ("echo a | cat",)),
        ("raw", {"_raw_params": "uptime"}, ("uptime",)),
        (
            "copy",
            {"src": "/h/.ansible/tmp/t/.source.txt", "dest": "/srv/app.conf", "mode": "0644"},
            (
                "tee -- /srv/app.conf",
                "tee -- /srv/app.conf/.source.txt",
                "chmod 0644 -- /srv/app.conf",
            ),
        ),
        (
            "copy",
            {"src": "/h/t/.source", "dest": "/srv/", "_original_basename": "a.conf"},
            ("tee -- /srv/a.conf",),
        ),
        ("file", {"path": "/srv/old", "state": "absent"}, ("rm -rf -- /srv/old",)),
        ("file", {"path": "/srv/new", "state": "directory"}, ("mkdir -p -- /srv/new",)),
        (
            "file",
            {"path": "/srv/l", "src": "/etc/x", "state": "link"},
            ("ln -sfn -- /etc/x /srv/l",),
        ),
        (
            "file",
            {"path": "/srv/x", "owner": "root", "recurse": True},
            ("stat -- /srv/x", "chown -R root -- /srv/x"),
        ),
        ("lineinfile", {"path": "/etc/hosts", "line": "1.2.3.4 x"}, ("tee -a -- /etc/hosts",)),
        (
            "lineinfile",
            {"path": "/etc/sudoers", "line": "x", "validate": "visudo -cf %s"},
            ("tee -a -- /etc/sudoers", "visudo -cf /etc/sudoers"),
        ),
        (
            "unarchive",
            {"src": "/h/t/source", "dest": "/opt/app"},
            ("cat -- /h/t/source", "tar -x -f /h/t/source -C /opt/app", "tee -- '/opt/app/*'"),
        ),
        (
            "user",
            {"name": "bob", "groups": "sudo,adm", "append": True},
            ("useradd -G sudo,adm bob", "usermod -aG sudo,adm bob"),
        ),
        ("user", {"name": "bob", "state": "absent", "remove": True}, ("userdel -r bob",)),
        ("group", {"name": "ops", "gid": 1500}, ("groupadd -g 1500 ops",)),
        (
            "authorized_key",
            {"user": "bob", "key": "ssh-ed25519 AAAA"},
            ("tee -a -- '~bob/.ssh/authorized_keys'",),
        ),
        (
            "cron",
            {"name": "x", "job": "/usr/bin/backup", "user": "root"},
            ("crontab -u root -", "/usr/bin/backup"),
        ),
        (
            "cron",
            {"name": "x", "job": "true", "cron_file": "backup"},
            ("tee -a -- /etc/cron.d/backup", "true"),
        ),
        (
            "systemd",
            {"name": "nginx", "state": "restarted", "enabled": True},
            ("systemctl enable nginx", "systemctl restart nginx"),
        ),
        ("systemd_service", {"daemon_reload": True}, ("systemctl daemon-reload",)),
        ("service", {"name": "nginx", "state": "stopped"}, ("systemctl stop nginx",)),
        (
            "apt",
            {"name": ["nginx", "curl"], "update_cache": True},
            ("apt-get update", "apt-get install -y -- nginx curl"),
        ),
        (
            "apt",
            {"name": "openssh-server", "state": "absent", "purge": True},
            ("apt-get remove -y --purge -- openssh-server",),
        ),
        ("dnf", {"name": "nginx", "state": "latest"}, ("dnf install -y -- nginx",)),
        (
            "pip",
            {"name": ["requests"], "virtualenv": "/srv/venv"},
            ("virtualenv /srv/venv", "/srv/venv/bin/pip install requests"),
        ),
        (
            "get_url",
            {"url": "https://example.org/x", "dest": "/tmp/x"},
            ("curl -fsSL -o /tmp/x -- https://example.org/x",),
        ),
        ("getent", {"database": "shadow"}, ("getent shadow",)),
        ("tempfile", {"state": "directory"}, ("mktemp -d",)),
    ],
)
def test_module_commands(name: str, args: dict, expected: tuple[str, ...]) -> None:
    assert commands(name, **args) == expected


@pytest.mark.parametrize(
    ("name", "args", "action", "rule"),
    [
        ("ping", {}, "allow", None),
        ("command", {"_raw_params": "cat /etc/shadow"}, "deny", "credential-read"),
        ("slurp", {"src": "/etc/shadow"}, "deny", "credential-read"),
        ("authorized_key", {"user": "bob", "key": "k"}, "deny", "authorized-keys-write"),
        ("user", {"name": "bob"}, "review", "account-changes"),
        ("cron", {"name": "x", "job": "cat /etc/shadow > /tmp/x"}, "deny", "credential-read"),
        ("copy", {"src": "/h/t/s", "dest": "/etc/cron.d/job"}, "review", "startup-files-write"),
        ("file", {"path": "/etc", "state": "absent"}, "deny", "delete-system-tree"),
        ("service", {"name": "sshd", "state": "stopped"}, "deny", "critical-service-stop"),
        ("apt", {"name": "openssh-server", "state": "absent"}, "deny", "critical-package-removal"),
        ("getent", {"database": "shadow"}, "deny", "account-database-dump"),
    ],
)
def test_the_default_pack_meets_the_equivalents(
    name: str, args: dict, action: str, rule: str | None
) -> None:
    decisions = [decision(line) for line in commands(name, **args)]
    worst = max(decisions, key=lambda d: ["allow", "alert", "review", "deny"].index(d[0]))
    assert worst == (action, rule), decisions


def test_copy_says_which_file_lands_where() -> None:
    effect = module_commands(module("copy", None, src="/t/.source", dest="/srv/run.sh"))
    assert effect.copies == (("/t/.source", "/srv/run.sh"), ("/t/.source", "/srv/run.sh/.source"))


def test_command_stdin_is_piped_to_the_command() -> None:
    (line,) = commands("command", _raw_params="sh", stdin="cat /etc/shadow")
    assert decision(line)[0] in ("deny", "review")


@pytest.mark.parametrize(
    ("name", "args", "why"),
    [
        ("script", {"_raw_params": "x"}, "no known equivalent"),
        ("expect", {"command": "passwd"}, "no known equivalent"),
        ("command", {"_raw_params": "ls", "surprise": 1}, "not known"),
        ("command", {"argv": ["cat", "$HOME/.ssh/id_rsa"]}, "variables"),
        (
            "command",
            {"_raw_params": "ls", "_uses_shell": True, "executable": "/tmp/sh"},
            "known shell",
        ),
        (
            "unarchive",
            {"src": "a.tgz", "dest": "/x", "extra_opts": ["--to-command=sh"]},
            "extra_opts",
        ),
        ("service", {"name": "x", "arguments": "--evil"}, "arguments"),
        ("file", {"path": "/x", "state": "weird"}, "state"),
        ("copy", {"dest": "/x"}, "no src"),
    ],
)
def test_what_has_no_equivalent_is_not_understood(name: str, args: dict, why: str) -> None:
    with pytest.raises(NotUnderstood) as caught:
        commands(name, **args)
    assert why in str(caught.value)


def test_ansible_may_tell_a_module_to_drop_unknown_arguments() -> None:
    internal = {"_ansible_ignore_unknown_opts": True}
    stat = module("stat", internal, path="/x", get_size=False, brand_new_option=1)
    assert module_commands(stat).commands == ("stat -- /x",)


def test_the_table_covers_the_modules_the_spec_names() -> None:
    named = {"command", "shell", "raw", "copy", "file", "template", "lineinfile", "unarchive",
             "user", "group", "authorized_key", "cron", "systemd", "service", "apt", "dnf",
             "pip", "ping", "setup", "stat", "slurp"}  # fmt: skip
    assert named <= set(MODULES)
