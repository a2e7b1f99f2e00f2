"""The detector table: every row loads, finds what it documents, and misses near misses.

The samples are generated from each row's own pattern (masking/samples.py): fake
secrets with the entropy of real ones, never copied from anywhere.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from masking import BUILTIN, NAMES, TABLE, Masker, Scanner, select
from masking.samples import sample
from masking.table import load

EVERYDAY = Path(__file__).parent / "everyday"
SEEDS = range(4)

# The rule names of gitleaks' default configuration (config/gitleaks.toml), the reference
# the issue names: each must be a detector here, or be covered by the one named below.
GITLEAKS_RULES = """
    1password-secret-key 1password-service-account-token adafruit-api-key adobe-client-id
    adobe-client-secret age-secret-key airtable-api-key airtable-personnal-access-token
    algolia-api-key alibaba-access-key-id alibaba-secret-key anthropic-admin-api-key
    anthropic-api-key artifactory-api-key artifactory-reference-token asana-client-id
    asana-client-secret atlassian-api-token authress-service-client-access-key
    aws-access-token aws-amazon-bedrock-api-key-long-lived
    aws-amazon-bedrock-api-key-short-lived azure-ad-client-secret beamer-api-token
    bitbucket-client-id bitbucket-client-secret bittrex-access-key bittrex-secret-key
    cisco-meraki-api-key clickhouse-cloud-api-secret-key clojars-api-token
    cloudflare-api-key cloudflare-global-api-key cloudflare-origin-ca-key
    codecov-access-token cohere-api-token coinbase-access-token confluent-access-token
    confluent-secret-key contentful-delivery-api-token curl-auth-header curl-auth-user
    databricks-api-token datadog-access-token defined-networking-api-token
    digitalocean-access-token digitalocean-pat digitalocean-refresh-token discord-api-token
    discord-client-id discord-client-secret doppler-api-token droneci-access-token
    dropbox-api-token dropbox-long-lived-api-token dropbox-short-lived-api-token
    duffel-api-token dynatrace-api-token easypost-api-token easypost-test-api-token
    etsy-access-token facebook-access-token facebook-page-access-token facebook-secret
    fastly-api-token finicity-api-token finicity-client-secret finnhub-access-token
    flickr-access-token flutterwave-encryption-key flutterwave-public-key
    flutterwave-secret-key flyio-access-token frameio-api-token freemius-secret-key
    freshbooks-access-token gcp-api-key generic-api-key github-app-token
    github-fine-grained-pat github-oauth github-pat github-refresh-token
    gitlab-cicd-job-token gitlab-deploy-token gitlab-feature-flag-client-token
    gitlab-feed-token gitlab-incoming-mail-token gitlab-kubernetes-agent-token
    gitlab-oauth-app-secret gitlab-pat gitlab-pat-routable gitlab-ptt gitlab-rrt
    gitlab-runner-authentication-token gitlab-runner-authentication-token-routable
    gitlab-scim-token gitlab-session-cookie gitter-access-token gocardless-api-token
    grafana-api-key grafana-cloud-api-token grafana-service-account-token harness-api-key
    hashicorp-tf-api-token hashicorp-tf-password heroku-api-key heroku-api-key-v2
    hubspot-api-key huggingface-access-token huggingface-organization-api-token
    infracost-api-token intercom-api-key intra42-client-secret jfrog-api-key
    jfrog-identity-token jwt jwt-base64 kraken-access-token kubernetes-secret-yaml
    kucoin-access-token kucoin-secret-key launchdarkly-access-token linear-api-key
    linear-client-secret linkedin-client-id linkedin-client-secret lob-api-key
    lob-pub-api-key looker-client-id looker-client-secret mailchimp-api-key
    mailgun-private-api-token mailgun-pub-key mailgun-signing-key mapbox-api-token
    mattermost-access-token maxmind-license-key messagebird-api-token messagebird-client-id
    microsoft-teams-webhook netlify-access-token new-relic-browser-api-token
    new-relic-insert-key new-relic-user-api-id new-relic-user-api-key notion-api-token
    npm-access-token nuget-config-password nytimes-access-token octopus-deploy-api-key
    okta-access-token openai-api-key openshift-user-token perplexity-api-key pkcs12-file
    plaid-api-token plaid-client-id plaid-secret-key planetscale-api-token
    planetscale-oauth-token planetscale-password postman-api-token prefect-api-token
    private-key privateai-api-token pulumi-api-token pypi-upload-token rapidapi-access-token
    readme-api-token rubygems-api-token scalingo-api-token sendbird-access-id
    sendbird-access-token sendgrid-api-token sendinblue-api-token sentry-access-token
    sentry-org-token sentry-user-token settlemint-application-access-token
    settlemint-personal-access-token settlemint-service-access-token shippo-api-token
    shopify-access-token shopify-custom-access-token shopify-private-app-access-token
    shopify-shared-secret sidekiq-secret sidekiq-sensitive-url slack-app-token
    slack-bot-token slack-config-access-token slack-config-refresh-token
    slack-legacy-bot-token slack-legacy-token slack-legacy-workspace-token slack-user-token
    slack-webhook-url snyk-api-token sonar-api-token sourcegraph-access-token
    square-access-token squarespace-access-token stripe-access-token sumologic-access-id
    sumologic-access-token telegram-bot-api-token travisci-access-token twilio-api-key
    twitch-api-token twitter-access-secret twitter-access-token twitter-api-key
    twitter-api-secret twitter-bearer-token typeform-api-token vault-batch-token
    vault-service-token yandex-access-token yandex-api-key yandex-aws-access-token
    zendesk-secret-key
""".split()
COVERED_BY = {
    "aws-access-token": "aws-access-key",
    "gcp-api-key": "google-api-key",
    "generic-api-key": "secret",
    "bittrex-secret-key": "bittrex-access-key",  # the same pattern as its access key
    "slack-legacy-bot-token": "slack-bot-token",
    "curl-auth-header": "bearer-token",  # any Authorization header, curl -H or not
    "kubernetes-secret-yaml": "password",  # data values named for a secret (keyed detectors)
}
COVERAGE_SAMPLES = {
    "generic-api-key": b"export SERVICE_API_KEY=9f8e7d6c5b4a39281706f5e4d3c2b1a0",
    "curl-auth-header": b'curl -H "Authorization: Bearer q8Zt2LmVx9Rk4Pw7Yb3Nc6Ds1Fg" https://api.example.com',
    "kubernetes-secret-yaml": b"  password: cGFzc3dvcmQxMjM0NTY3OA==",
    "slack-legacy-bot-token": b"xoxb-12345678901-q8Zt2LmVx9Rk4Pw7Yb3Nc6Ds",
}
NOT_OUTPUT = {"pkcs12-file"}  # a file-name rule: there is no text to mask


def mask(text: bytes) -> bytes:
    masker = Masker()
    return masker.feed(text) + masker.flush()


def test_the_table_loads_with_unique_names_and_known_groups() -> None:
    assert len(NAMES) == len(BUILTIN) >= 280
    assert {d.group for d in BUILTIN} <= {*TABLE.groups, "custom"}
    for alias, members in TABLE.aliases.items():
        assert {d.name for d in select([alias])} == set(members)


def test_gitleaks_default_rules_are_all_covered() -> None:
    assert len(GITLEAKS_RULES) == 222
    for rule in GITLEAKS_RULES:
        if rule in NOT_OUTPUT:
            continue
        assert COVERED_BY.get(rule, rule) in NAMES, rule
    for rule, text in COVERAGE_SAMPLES.items():
        out = mask(text + b"\n")
        assert b"[MASKED:" in out, (rule, out)


@pytest.mark.parametrize("detector", BUILTIN, ids=lambda d: d.name)
def test_generated_samples_are_masked(detector) -> None:
    for seed in SEEDS:
        text, secret = sample(detector, random.Random(seed * 7919 + hash(detector.name) % 1000))
        out = mask(text + b"\n")
        assert b"[MASKED:" in out, (text, out)
        if len(secret) >= 6:
            assert secret not in out, (text, out)
        # the detector alone finds it (its trigger and pattern agree)
        alone = Scanner([detector]).find(text, 0, len(text))
        assert alone, text


CUT_SHORT_KINDS = ("token", "assignment", "pii")


@pytest.mark.parametrize(
    "detector", [d for d in BUILTIN if d.kind in CUT_SHORT_KINDS], ids=lambda d: d.name
)
def test_samples_cut_short_are_not_found_by_their_detector(detector) -> None:
    scanner = Scanner([detector])
    for seed in SEEDS:
        text, secret = sample(detector, random.Random(seed))
        short = text.replace(secret, secret[: max(1, min(4, len(secret) // 3))])
        assert not scanner.find(short, 0, len(short)), (text, short)


def test_both_prefilter_engines_find_the_same() -> None:
    fast, plain = Scanner(BUILTIN, engine="hyperscan"), Scanner(BUILTIN, engine="re")
    texts = [sample(d, random.Random(3))[0] for d in BUILTIN]
    texts += [p.read_bytes()[:20000] for p in sorted(EVERYDAY.glob("*.txt"))]
    for text in texts:
        a = {(s.mask_start, s.mask_end, s.name) for s in fast.find(text, 0, len(text))}
        b = {(s.mask_start, s.mask_end, s.name) for s in plain.find(text, 0, len(text))}
        assert a == b, text[:200]


def test_a_bad_table_is_refused_with_the_row_named() -> None:
    with pytest.raises(ValueError, match="token\\[0\\].*needs keywords or a trigger"):
        load("token = [{ name = 'x', pattern = 'x[0-9]{9}' }]")
    with pytest.raises(ValueError, match="unknown validator"):
        load("token = [{ name = 'x', pattern = 'x', keywords = ['x'], validator = 'nope' }]")
    with pytest.raises(ValueError, match="unknown field"):
        load("token = [{ name = 'x', pattern = 'x', keywords = ['x'], colour = 1 }]")
