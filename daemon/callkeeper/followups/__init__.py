"""Follow-up texts to callers and webhooks about calls, delivered exactly once through the store's
durable outbox: `FollowupService` is what the daemon wires in."""

from callkeeper.followups.planner import FollowupPlanner
from callkeeper.followups.service import FollowupService
from callkeeper.followups.worker import OutboxSettings, OutboxWorker

__all__ = ["FollowupPlanner", "FollowupService", "OutboxSettings", "OutboxWorker"]
