"""What an erasure may keep about the person erased: at most a salted hash of the id, never the id.

With ``FAIRNESS_ERASURE_SALT`` set (a secret kept outside the database), the erasure record holds
HMAC-SHA256(salt, tenant + NUL + candidate), so that the deployment can later answer "was this person erased?" by
recomputing it; without the salt it holds nothing of the id. Rejected input lines have no candidate column: they are
matched on the candidate id and the tenant id as whole fields (:func:`field_pattern`).
"""

from __future__ import annotations

import hashlib
import hmac
import os

SALT_ENV = "FAIRNESS_ERASURE_SALT"
FIELD_DELIMITERS = r"""[,"'\s;:{}\[\]]"""
"""Characters that end a field in the CSV and JSON Lines inputs (and whitespace)."""


def subject_hash(tenant_id: str, candidate_id: str, salt: str | None = None) -> str | None:
    """HMAC-SHA256 hex of the (tenant, candidate) pair under ``salt`` (default ``FAIRNESS_ERASURE_SALT``); None
    without a salt, since an unsalted hash of a guessable id identifies the person."""
    key = salt if salt is not None else os.environ.get(SALT_ENV, "")
    if not key:
        return None
    message = f"{tenant_id}\0{candidate_id}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def field_pattern(value: str) -> str:
    """A PostgreSQL regular expression matching ``value`` as a whole field of a raw input line."""
    escaped = "".join(char if char.isalnum() else "\\" + char for char in value)
    return f"(^|{FIELD_DELIMITERS}){escaped}($|{FIELD_DELIMITERS})"
