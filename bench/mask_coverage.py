"""How much the masker catches, and how much clean output it leaves alone, on cases the tests
do not use: fake secrets in new contexts and through transformations, and the live output
of everyday tools on this machine (data nobody wrote for the masker).

A secret case counts as caught when its secret part no longer shows in the output (or in
what a terminal would show of it) and, for the encoders that cannot be masked, when an
EncodedSecret event names the encoder. A clean line counts as untouched when it comes
through byte for byte with no event.

Run: python bench/mask_coverage.py [--verbose]
"""

from __future__ import annotations

import argparse
import base64
import gzip
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from masking import EncodedSecret, Masker, projection  # noqa: E402

AWS = "AKIAZ3MHQW7RTX4KPL2N"
GH = "ghp_Q7mZ2xK9pL4vR8tW1yB6nC3dF5hJ0sA2eG7u"
JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJhZ2VudC03IiwiaWF0IjoxNzY0MDAwMDAwfQ.Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0"

# (label, text, the part that must not show)
SECRETS: list[tuple[str, str, str]] = [
    (
        "git remote with a token",
        f"origin\thttps://x-access-token:{GH}@github.com/acme/app.git (fetch)",
        GH,
    ),
    (
        "git extraheader",
        "http.https://github.com/.extraheader=AUTHORIZATION: basic eC1hY2Nlc3MtdG9rZW46Z2hwX1E3bVoyeEs5",
        "eC1hY2Nlc3MtdG9rZW46",
    ),
    (
        "docker config auth",
        '{"auths":{"registry.example.com":{"auth":"ZGVwbG95OlM5dnFSMnpMOHg="}}}',
        "ZGVwbG95OlM5dnFSMnpMOHg=",
    ),
    ("pgpass", "db.internal:5432:payments:svc_pay:Vq8#mK2z!rT", "Vq8#mK2z!rT"),
    ("jdbc url", "jdbc:postgresql://db:5432/app?user=app&password=Kz7Lq2Mv9Xw", "Kz7Lq2Mv9Xw"),
    ("redis url", "REDIS_URL=redis://:Hx8Zq2Lp7Vw@cache.internal:6379/0", "Hx8Zq2Lp7Vw"),
    ("mysql env", "export MYSQL_PWD='Wq9xZ2kL7p'", "Wq9xZ2kL7p"),
    ("kubeconfig token", f"    token: {JWT}", "Zm9vYmFyYmF6cXV4"),
    (
        "kubeconfig key data",
        "    client-key-data: "
        + base64.b64encode(
            b"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIO1k\n-----END EC PRIVATE KEY-----\n"
        ).decode(),
        "LS0tLS1CRUdJTiBFQyBQUklW",
    ),
    (
        "azure conn string",
        "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey="
        + "Zk9" * 28
        + "Q==;EndpointSuffix=core.windows.net",
        "Zk9Zk9Zk9Zk9",
    ),
    (
        "azure sas",
        "https://acme.blob.core.windows.net/c/f.txt?sv=2022-11-02&ss=b&sp=r&se=2026-12-01&sig=q8Zt2LmVx9Rk4Pw7Yb3Nc6Ds1Fg5Hj0Kl2MnQ8Zt2Lm%3D",
        "q8Zt2LmVx9Rk4Pw7",
    ),
    (
        "azure client secret",
        "  clientSecret: Zz18Q~Ab3.De5_Fg7-Hi9Jk1Lm3No5Pq7Rs9Tu",
        "Ab3.De5_Fg7",
    ),
    (
        "slack webhook in yaml",
        "  webhook: https://hooks.slack.com/services/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",
        "zXcVbNmLkJhGfDsAqWeRtYuI",
    ),
    (
        "slack user token",
        "SLACK=xoxp-1234567890123-1234567890123-1234567890123-0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "0a1b2c3d4e5f6071",
    ),
    ("stripe restricted test", "STRIPE_KEY=rk_test_51Hq2LmVx9Rk4Pw7Yb3Nc6DsQ", "51Hq2LmVx9Rk4Pw7"),
    ("stripe webhook secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "MfKQ9r8GKYqrTwjU"),
    ("gitlab deploy token", "CI_DEPLOY_PASSWORD=gldt-Zq8r2LmVx9Rk4Pw7Yb3N", "Zq8r2LmVx9Rk4Pw7"),
    ("gitlab routable pat", "glpat-AbCdEfGhIjKlMnOpQrStUvWxYz0.01.171a2b3c4", "171a2b3c4"),
    ("gitlab feed token", "feed_token=glft-Q7mZ2xK9pL4vR8tW1yB6", "Q7mZ2xK9pL4vR8tW"),
    (
        "npm token in .npmrc",
        "//npm.pkg.github.com/:_authToken=npm_Q7mZ2xK9pL4vR8tW1yB6nC3dF5hJ0sA2eG7u",
        "Q7mZ2xK9pL4vR8tW",
    ),
    (
        "pypi token in .pypirc",
        "password = pypi-AgEIcHlwaS5vcmcCJGQ3ZjM5YzRmLWE4ZTEtNGQ2Ny1iZTk3LTEyMzQ1Njc4OTBhYgACKlszLCI",
        "CJGQ3ZjM5YzRm",
    ),
    (
        "twilio sid + token",
        "TWILIO_ACCOUNT_SID=AC0123456789abcdef0123456789abcdef TWILIO_AUTH_TOKEN=9f8e7d6c5b4a39281706f5e4d3c2b1a0",
        "9f8e7d6c5b4a3928",
    ),
    (
        "sendgrid in json",
        '{"apiKey":"SG.AbCdEfGhIjKlMnOpQrStUv.WxYz0123456789AbCdEfGhIjKlMnOpQrStUvWxYz012"}',
        "WxYz0123456789",
    ),
    (
        "openai project key",
        "OPENAI_API_KEY=sk-proj-Q7mZ2xK9pL4vR8tW1yB6nC3dF5hJ0sA2eG7uT3BlbkFJ",
        "Q7mZ2xK9pL4vR8tW",
    ),
    (
        "anthropic key",
        "x-api-key: sk-ant-api03-Q7mZ2xK9pL4vR8tW1yB6nC3dF5hJ0sA2eG7uQ7mZ2xK9pL4vR8tW1yB6nC3dF5hJ0sA2eG7u-AA",
        "Q7mZ2xK9pL4vR8tW",
    ),
    (
        "google oauth secret",
        "client_secret=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",
        "Q7mZ2xK9pL4vR8tW",
    ),
    (
        "vault token",
        "VAULT_TOKEN=hvs.CAESIQ7mZ2xK9pL4vR8tW1yB6nC3dF5hJ0sA2eG7uQ7mZ2xK9pL4vR8tW1yB6nC3dF5hJ0sA2eG7uQ7mZ2xK9pL4vR8tW1yB6nC3dF5",
        "CAESIQ7mZ2xK9pL4",
    ),
    ("datadog key", "DD_API_KEY=0a1b2c3d4e5f60718293a4b5c6d7e8f9", "0a1b2c3d4e5f6071"),
    ("heroku key", "HEROKU_API_KEY=5f6e7d8c-9b0a-4c1d-8e2f-3a4b5c6d7e8f", "5f6e7d8c-9b0a"),
    (
        "bearer in log",
        "2026-11-24 DEBUG sending headers {'Authorization': 'Bearer Q7mZ2xK9pL4vR8tW1yB6nC3d'}",
        "Q7mZ2xK9pL4vR8tW",
    ),
    ("basic in curl -v", "> Authorization: Basic ZGVwbG95Olh6OHE3TG0y", "ZGVwbG95Olh6OHE3TG0y"),
    (
        "cookie",
        "< Set-Cookie: sessionid=Q7mZ2xK9pL4vR8tW1yB6nC3d; Path=/; HttpOnly",
        "Q7mZ2xK9pL4vR8tW",
    ),
    ("x-auth-token", "X-Auth-Token: 7c9e1a2b3d4f5a6b7c8d9e0f1a2b3c4d", "7c9e1a2b3d4f5a6b"),
    ("yaml password", "  db_password: 'c0rrect-h0rse'", "c0rrect-h0rse"),
    (
        "ini secret",
        "secret_key_base = 6f1ed002ab5595859014ebf0951522d9f87e4b4c7a39f8e6b0cd8a3d2b4f9a11",
        "6f1ed002ab559585",
    ),
    ("xml password", "<password>Tr1cky-Pass!</password>", "Tr1cky-Pass!"),
    ("netrc", "machine api.example.com login deploy password Qz8rL2mV", "Qz8rL2mV"),
    ("cli flag", "docker login -u deploy --password Xq7Zp2Lm9 registry.example.com", "Xq7Zp2Lm9"),
    (
        "shadow line",
        "deploy:$y$j9T$Q7mZ2xK9pL4vR8tW1yB6n.$C3dF5hJ0sA2eG7uQ7mZ2xK9pL4vR8tW1yB6nC3dF5:19700:0:99999:7:::",
        "C3dF5hJ0sA2eG7u",
    ),
    (
        "private key in json",
        '{"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\\n-----END PRIVATE KEY-----\\n"}',
        "MIIEvQIBADANBgkq",
    ),
    (
        "email in csv",
        "42,Jane Roe,jane.roe+billing@example.org,active",
        "jane.roe+billing@example.org",
    ),
    ("email idn", "contact: björn@bücher.example", "björn@bücher.example"),
    (
        "cards in a table",
        "| 4539 1488 0343 6467 | 5425-2334-3010-9903 | 374245455400126 |",
        "0343 6467",
    ),
    ("iban lowercase-free", "payee IBAN: FR76 3000 6000 0112 3456 7890 189", "3456 7890 189"),
    ("ssn in text", "SSN 219-45-6789 on file", "219-45-6789"),
    ("uk nino", "NI: JG 10 37 46 A", "JG 10 37 46 A"),
    ("phone e164", "call +33 6 12 34 56 78", "+33 6 12 34 56 78"),
    ("phone us", "cell: (212) 555-0187", "(212) 555-0187"),
    # transformations
    ("colour split", f"key \x1b[31m{AWS[:6]}\x1b[0m{AWS[6:]}", AWS),
    ("bold per char", "key " + "".join(f"\x1b[1m{c}\x1b[22m" for c in AWS), AWS),
    ("backspace overstrike", "key " + "".join(f"{c}\b{c}" for c in AWS), AWS),
    ("carriage return rewrite", f"key XXXXXXXXXXXXXXXXXXXXXXXX\rkey {AWS}", AWS),
    ("cursor left", f"key {AWS[:10]}ZZZ\x1b[3D{AWS[10:]}", AWS),
    ("zero-width joiner", f"key {AWS[:5]}\u200d{AWS[5:]}", AWS),
    ("soft hyphen", f"key {AWS[:5]}\u00ad{AWS[5:]}", AWS),
    ("jwt with tab", f"t={JWT[:30]}\t{JWT[30:]}", "Zm9vYmFyYmF6cXV4"),
    ("jwt with zwsp", f"t={JWT[:30]}\u200b{JWT[30:]}", "Zm9vYmFyYmF6cXV4"),
    ("two lines", f"{AWS[:9]}\n{AWS[9:]}", AWS),
    ("cut -c pieces", f"{GH[:15]}\n{GH[15:30]}\n{GH[30:]}", GH),
]
# (label, command with {file}, encoder expected in an event or None when the output is masked)
TRANSFORMS: list[tuple[str, list[str], str | None]] = [
    ("rev", ["rev"], None),
    ("fold -w 8", ["fold", "-w", "8"], None),
    ("fold -w 3", ["fold", "-w", "3"], None),
    ("iconv utf-16le", ["iconv", "-f", "UTF-8", "-t", "UTF-16LE"], None),
    ("iconv utf-16be", ["iconv", "-f", "UTF-8", "-t", "UTF-16BE"], None),
    ("iconv utf-32", ["iconv", "-f", "UTF-8", "-t", "UTF-32"], None),
    ("base64", ["base64"], "base64"),
    ("base64 -w0", ["base64", "-w0"], "base64"),
    ("base32", ["base32"], "base32"),
    ("xxd", ["xxd"], "hex (xxd)"),
    ("xxd -p", ["xxd", "-p"], "hex"),
    ("hexdump -C", ["hexdump", "-C"], "hex (hexdump -C)"),
    ("od -x", ["od", "-x"], "hex (od -x)"),
    ("od -c", ["od", "-c"], "od -c"),
    ("od -An -tx1", ["od", "-An", "-tx1"], "hex (od -An -tx1)"),
    ("gzip -c", ["gzip", "-c"], "gzip"),
    ("bzip2 -c", ["bzip2", "-c"], "bzip2"),
    ("xz -c", ["xz", "-c"], "xz"),
]
EVERYDAY_COMMANDS = [
    ["ls", "-la", "/usr/lib"],
    ["ls", "-la", "/etc"],
    ["ps", "aux"],
    ["ip", "-s", "addr"],
    ["df", "-h"],
    ["mount"],
    ["lsblk", "-f"],
    ["free", "-m"],
    ["uname", "-a"],
    ["id"],
    ["cat", "/etc/os-release"],
    ["cat", "/proc/meminfo"],
    ["cat", "/proc/self/status"],
    ["sha256sum", "/usr/bin/ls", "/usr/bin/cp"],
    ["xxd", "-l", "4096", "/usr/bin/ls"],
    ["hexdump", "-C", "-n", "4096", "/usr/bin/cp"],
    ["od", "-x", "-N", "2048", "/usr/bin/true"],
    ["head", "-200", "/etc/ssh/moduli"],
    ["git", "log", "--stat", "-30", "--format=%h %ad %s"],
    ["dpkg", "-l"],
    ["pip", "list"],
    ["cat", "/etc/services"],
    ["cat", "/etc/protocols"],
    ["getent", "group"],
    ["find", "/usr/share/doc", "-maxdepth", "2"],
    ["openssl", "version", "-a"],
    ["locale", "-a"],
]


def masked(data: bytes) -> tuple[bytes, list]:
    masker = Masker(terminal=False)
    out = masker.feed(data) + masker.flush()
    return out, masker.take_events()


def shows(out: bytes, secret: bytes) -> bool:
    flat = out.replace(b"\0", b"")
    views = [flat, projection.stripped(flat, 0, len(flat)).text]
    views += [projection.rendered(line, 0, len(line)).text for line in flat.split(b"\n")]
    joined = b"\n".join(views)
    return secret in joined or secret in joined.replace(b"\n", b"")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    caught = 0
    for label, text, secret in SECRETS:
        out, _ = masked(text.encode() + b"\n")
        ok = not shows(out, secret.encode())
        caught += ok
        if args.verbose or not ok:
            print(f"{'ok  ' if ok else 'MISS'} secret: {label}: {out[:160]!r}")
    plain = f"id {AWS}\ntoken={GH}\n".encode()
    transformed = 0
    for label, argv, encoder in TRANSFORMS:
        if shutil.which(argv[0]) is None:
            print(f"skip {label}: {argv[0]} missing")
            continue
        data = subprocess.run(argv, input=plain, capture_output=True, timeout=30).stdout
        out, events = masked(data)
        if encoder is None:
            ok = not shows(out, AWS.encode()) and not shows(out, GH.encode())
        else:
            names = {(e.encoder, e.detector) for e in events if isinstance(e, EncodedSecret)}
            ok = (encoder, "aws-access-key") in names and (encoder, "github-pat") in names
        transformed += ok
        if args.verbose or not ok:
            print(f"{'ok  ' if ok else 'MISS'} transform: {label}")
    lines = untouched = 0
    for argv in EVERYDAY_COMMANDS:
        if shutil.which(argv[0]) is None:
            continue
        data = subprocess.run(argv, capture_output=True, timeout=60).stdout
        for line in data.splitlines(keepends=True):
            out, events = masked(line)
            lines += 1
            clean = out == line and not events
            untouched += clean
            if not clean and args.verbose:
                print(f"MASK clean: {line[:140]!r} -> {out[:140]!r}")
    gz = gzip.compress(b"nothing secret here\n" * 100)
    out, events = masked(gz)
    quiet = out == gz and not [e for e in events if isinstance(e, EncodedSecret)]
    print()
    print(f"secrets in new contexts masked   {caught}/{len(SECRETS)}")
    print(f"transformations masked/reported  {transformed}/{len(TRANSFORMS)}")
    print(
        f"clean lines untouched            {untouched}/{lines} ({100 * untouched / max(lines, 1):.2f}%)"
    )
    print(f"a clean gzip stream raises none  {quiet}")


if __name__ == "__main__":
    main()
