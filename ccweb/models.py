"""Imports every model module so ``Base.metadata`` is complete (Alembic, tests)."""

from ccweb.admin.models import AuditLog
from ccweb.auth.models import InviteCode, RefreshToken
from ccweb.db import Base
from ccweb.flags.models import FeatureFlag
from ccweb.idempotency.models import IdempotencyRecord
from ccweb.ops.models import ProcessedEvent, UserDailyActivity
from ccweb.outbox.models import OutboxEvent
from ccweb.users.models import User
from ccweb.wallet.models import LedgerEntry

__all__ = [
    "AuditLog",
    "Base",
    "FeatureFlag",
    "IdempotencyRecord",
    "InviteCode",
    "LedgerEntry",
    "OutboxEvent",
    "ProcessedEvent",
    "RefreshToken",
    "User",
    "UserDailyActivity",
]
