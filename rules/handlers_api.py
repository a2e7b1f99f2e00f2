"""HTTP and service APIs driven from the command line: what a request changes.

A URL alone says where a request goes, not what it does: `curl -X DELETE
localhost:9200/_all` drops every index, `gh api -X PUT .../collaborators/eve`
grants a repository. These handlers name the request's method and the API paths
that destroy or grant (`method:DELETE`, `api-path:destroys`) as targets rules
match, and read the files HTTP clients send (`http POST URL @file`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

from rules.effects import Facts
from rules.values import Word, text_of

# Path segments of HTTP APIs (Elasticsearch, Consul, CouchDB, Qdrant, Docker...) that
# delete, close, shut down or hand out control, whatever the method says.
_DESTRUCTIVE_SEGMENTS = frozenset(
    "delete _delete_by_query _close drop truncate shutdown _shutdown destroy purge wipe "
    "flushall bootstrap acl _security revoke".split()
)
_QUERY_FIELDS = ("q=", "query=")


def request(facts: Facts, method: str | None, urls: list[str | Word]) -> None:
    """The method a request uses (`method:DELETE`), and `api-path:destroys` when a URL's
    path names an operation that deletes or hands out control (`/_all/_close`)."""
    if method:
        facts.targets.append(f"method:{method.upper()}")
    for url in urls:
        text = text_of(url)
        path = urlsplit(text if "://" in text else f"http://{text}").path
        segments = {unquote(s).lower() for s in path.split("/") if s}
        if segments & _DESTRUCTIVE_SEGMENTS and method and method.upper() != "GET":
            facts.targets.append("api-path:destroys")


def query_sql(facts: Facts, value: str | Word) -> None:
    """`--data-urlencode 'q=DROP DATABASE x'`: a query field that parses as SQL is SQL
    (InfluxDB, ClickHouse and others take statements over HTTP); other text is data."""
    from rules.sql import sql_kinds

    text = text_of(value)
    if not isinstance(value, str) or not text.startswith(_QUERY_FIELDS):
        return
    try:
        facts.sql.extend(sql_kinds(text.split("=", 1)[1]))
    except (ValueError, RecursionError):
        return


_HTTPIE_METHODS = frozenset("GET POST PUT PATCH DELETE HEAD OPTIONS".split())
# httpie request items that send a file: `@FILE` (the body), `field@FILE` (a form file),
# `field=@FILE` and `field:=@FILE` (a field's value read from the file)
_HTTPIE_FILE = re.compile(r"^(?:[^=:@]*(?:=|:=))?@(?P<file>.+)$|^[^=:@]+@(?P<form>.+)$")


def httpie(facts: Facts) -> None:
    """http/xh [METHOD] URL [ITEM...]: items naming files are read and sent."""
    words = facts.positional_words()
    method = None
    if words and text_of(words[0]).upper() in _HTTPIE_METHODS:
        method = text_of(words.pop(0))
    request(facts, method, words[:1])
    for word in words[1:]:
        match = _HTTPIE_FILE.match(text_of(word))
        if match is None:
            continue
        file = match.group("file") or match.group("form")
        found = facts.path(file if isinstance(word, str) else Word(file, None, 2), "r")
        facts.sends.extend(found)
        facts.caps.add("send")


def gh_api(facts: Facts) -> None:
    """gh api [-X METHOD] ENDPOINT: the method is named (fields imply POST, not judged)."""
    methods = facts.option_values("-X", "--method")
    request(facts, text_of(methods[-1]) if methods else None, facts.positional_words()[:1])


def gh_upload(facts: Facts) -> None:
    """gh release create|upload TAG FILE...: the files go to GitHub; gh repo create
    --push sends the local repository (`--source`, the current one by default)."""
    path = facts.parsed.node.path()
    words = facts.positional_words()
    if path[-1:] in (("create",), ("upload",)) and path[:1] == ("release",):
        for word in words[1:]:
            file = text_of(word).split("#", 1)[0]  # FILE#LABEL
            found = facts.path(file if isinstance(word, str) else word, "r")
            facts.sends.extend(found)
    elif path[:1] == ("repo",) and any(g.spelling == "--push" for g in facts.parsed.options):
        sources = facts.option_values("-s", "--source") or ["."]
        facts.sends.extend(facts.path(sources[-1], "r"))
        facts.caps.add("send")


# Vault paths whose writes decide who may read every secret.
_VAULT_ACCESS = ("sys/policy", "sys/policies", "sys/auth", "sys/mounts", "auth/", "identity/")


def vault_path(facts: Facts) -> None:
    """vault write|delete PATH [K=V...]: policies, auth methods and identities are
    access control; a `policies=` field grants whatever policies it names."""
    words = [text_of(w) for w in facts.positional_words()]
    if words and words[0].lstrip("/").startswith(_VAULT_ACCESS):
        facts.caps.add("privilege")
    if any(re.match(r"^(token_)?policies=", word) for word in words[1:]):
        facts.caps.add("privilege")


# Kinds that decide who may do what in a cluster, or that enforce its policies.
_KUBE_ACCESS_KINDS = frozenset(
    "clusterrole clusterroles clusterrolebinding clusterrolebindings role roles rolebinding "
    "rolebindings serviceaccount serviceaccounts sa validatingwebhookconfiguration "
    "validatingwebhookconfigurations mutatingwebhookconfiguration "
    "mutatingwebhookconfigurations podsecuritypolicy podsecuritypolicies psp "
    "certificatesigningrequest certificatesigningrequests csr".split()
)
_KUBE_CHANGES = frozenset("patch edit set label annotate create replace apply delete".split())
_KUBE_PRIVILEGED = re.compile(r'"?(privileged|hostPID|hostNetwork|hostIPC|hostPath)"?\s*:\s*(true|\{)')


def kube_change(facts: Facts, sub: str | None, kinds: set[str], patches: list[str | Word]) -> None:
    """kubectl changes to RBAC, admission or pod-security objects, to namespaces' labels
    and to kube-system are privilege; a patch that makes a pod privileged is too, and one
    that sets replicas to 0 takes the workload down (`replicas:0`)."""
    if sub not in _KUBE_CHANGES:
        return
    kinds = kinds | set(facts.parsed.node.path()[1:2])  # `create clusterrole NAME`
    namespace = [text_of(v) for v in facts.option_values("-n", "--namespace")]
    if kinds & _KUBE_ACCESS_KINDS or "kube-system" in namespace:
        facts.caps.add("privilege")
    if sub in ("label", "annotate") and kinds & {"ns", "namespace", "namespaces"}:
        facts.caps.add("privilege")  # pod-security.kubernetes.io/enforce=privileged
    for patch in patches:
        text = text_of(patch)
        if _KUBE_PRIVILEGED.search(text):
            facts.caps.add("privilege")
        if re.search(r'"replicas"\s*:\s*0\b', text):
            facts.targets.append("replicas:0")
    if sub == "set" and facts.parsed.node.path()[1:2] == ("subject",):
        facts.caps.add("privilege")


# What the file modules of ansible do to the paths their arguments name, as kinds.
_ANSIBLE_PATH_KINDS = {
    "file": {"path": "a", "dest": "a", "name": "a"},
    "copy": {"src": "r", "dest": "w"},
    "template": {"src": "r", "dest": "w"},
    "lineinfile": {"path": "a", "dest": "a"},
    "blockinfile": {"path": "a", "dest": "a"},
    "replace": {"path": "a", "dest": "a"},
    "unarchive": {"src": "r", "dest": "W"},
}


def ansible_module_args(facts: Facts, module: str, value: str | Word) -> None:
    """`-m file -a 'path=/etc state=absent'`: a module's `key=value` arguments are the
    paths it reads, writes or deletes, or the accounts it changes (user, group)."""
    import shlex

    name = module.removeprefix("ansible.builtin.")
    if name in ("user", "group", "authorized_key"):
        facts.caps.add("account")
    kinds = _ANSIBLE_PATH_KINDS.get(name)
    if kinds is None:
        return
    if not isinstance(value, str):
        facts.not_understood(text_of(value)[:40], "ansible module arguments not known")
        return
    try:
        pairs = dict(item.partition("=")[::2] for item in shlex.split(value) if "=" in item)
    except ValueError:
        facts.not_understood(value[:40], "ansible module arguments that do not parse")
        return
    for key, kind in kinds.items():
        if key in pairs:
            deleted = pairs.get("state") == "absent" and kind == "a"
            facts.path(pairs[key], "D" if deleted else kind)


HANDLERS: dict[str, Callable[[Facts], None]] = {
    "httpie": httpie,
    "gh-api": gh_api,
    "gh-upload": gh_upload,
    "vault-path": vault_path,
}
