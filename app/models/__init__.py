"""Peewee models; ``TABLES`` lists them parents first (create in order, drop in reverse)."""

from app.models.base import BaseModel, UTCDateTimeField, utcnow
from app.models.blocks import (
    BlockDocument,
    BlockDocumentReference,
    BlockSchema,
    BlockType,
    EncryptionKey,
)
from app.models.flows import Deployment, Flow
from app.models.misc import (
    Agent,
    Artifact,
    ConcurrencyLimit,
    ConcurrencySlot,
    GlobalConcurrencyLease,
    GlobalConcurrencyLimit,
    Log,
    SavedSearch,
    Variable,
    WorkQueue,
)
from app.models.notifications import FlowRunNotification, FlowRunNotificationPolicy
from app.models.rollups import FlowRunHourly, FlowRunHourlyStale, RollupRefresh
from app.models.runs import (
    FlowRun,
    FlowRunState,
    TaskRun,
    TaskRunState,
    TaskRunStateCache,
)
from app.models.sessions import DashboardSession

TABLES = (
    Flow,
    Deployment,
    FlowRun,
    FlowRunState,
    TaskRun,
    TaskRunState,
    TaskRunStateCache,
    WorkQueue,
    Agent,
    ConcurrencyLimit,
    ConcurrencySlot,
    Log,
    SavedSearch,
    FlowRunHourly,
    FlowRunHourlyStale,
    RollupRefresh,
    BlockType,
    BlockSchema,
    BlockDocument,
    BlockDocumentReference,
    EncryptionKey,
    FlowRunNotificationPolicy,
    FlowRunNotification,
    Variable,
    Artifact,
    DashboardSession,
    GlobalConcurrencyLimit,
    GlobalConcurrencyLease,
)

__all__ = [
    "TABLES",
    "BaseModel",
    "UTCDateTimeField",
    "utcnow",
    "Agent",
    "Artifact",
    "BlockDocument",
    "BlockDocumentReference",
    "BlockSchema",
    "BlockType",
    "EncryptionKey",
    "ConcurrencyLimit",
    "ConcurrencySlot",
    "DashboardSession",
    "Deployment",
    "Flow",
    "FlowRun",
    "FlowRunHourly",
    "FlowRunHourlyStale",
    "FlowRunNotification",
    "FlowRunNotificationPolicy",
    "FlowRunState",
    "GlobalConcurrencyLease",
    "GlobalConcurrencyLimit",
    "Log",
    "RollupRefresh",
    "SavedSearch",
    "TaskRun",
    "TaskRunState",
    "TaskRunStateCache",
    "Variable",
    "WorkQueue",
]
