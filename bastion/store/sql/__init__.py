"""The SQL both backends share: domain operations written once against a small
transaction interface (`Tx`), with `?` placeholders that the PostgreSQL backend
rewrites. What differs (connections, full-text search, wake-ups, migrations
directory) lives in bastion/store/sqlite/ and bastion/store/postgres/.
"""
