"""SQLite storage: the only package that imports sqlite3.

`Database` owns a connection and applies numbered migrations; one repository
class per table sits on top of it. The server calls these from a single worker
thread (`AsyncDatabase`) so SQL never runs on the event loop.
"""

from bastion.store.db import AsyncDatabase, Database
from bastion.store.records import AuditRecord, CertificateRecord, SessionRecord

__all__ = ["AsyncDatabase", "AuditRecord", "CertificateRecord", "Database", "SessionRecord"]
