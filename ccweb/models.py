"""Imports every model module so ``Base.metadata`` is complete (Alembic, tests)."""

from ccweb.actions.models import UserAction
from ccweb.admin.models import AuditLog
from ccweb.auth.models import InviteCode, RefreshToken
from ccweb.db import Base
from ccweb.flags.models import FeatureFlag
from ccweb.games.models import FairnessSeed, GameRound, GameSession, GameStats, RevealedSeed
from ccweb.idempotency.models import IdempotencyRecord
from ccweb.liveops.models import (
    Achievement,
    EventParticipation,
    LiveEvent,
    Mission,
    UserAchievement,
    UserItem,
    UserMission,
)
from ccweb.ops.models import ProcessedEvent, UserDailyActivity
from ccweb.outbox.models import OutboxEvent, RelayCursor
from ccweb.segments.models import SegmentThresholds, UserSegment
from ccweb.shop.models import Product, Purchase, SettlementCallback, SigningKey
from ccweb.streak.models import Streak
from ccweb.users.models import User
from ccweb.wallet.models import LedgerEntry

__all__ = [
    "Achievement",
    "AuditLog",
    "Base",
    "EventParticipation",
    "FairnessSeed",
    "FeatureFlag",
    "GameRound",
    "GameSession",
    "GameStats",
    "IdempotencyRecord",
    "InviteCode",
    "LedgerEntry",
    "LiveEvent",
    "Mission",
    "OutboxEvent",
    "ProcessedEvent",
    "Product",
    "Purchase",
    "RefreshToken",
    "RelayCursor",
    "RevealedSeed",
    "SegmentThresholds",
    "SettlementCallback",
    "SigningKey",
    "Streak",
    "User",
    "UserAchievement",
    "UserAction",
    "UserDailyActivity",
    "UserItem",
    "UserMission",
    "UserSegment",
]
