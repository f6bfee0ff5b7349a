"""The delivery worker: sends due outbox rows, with retries and back-off, and notices overdue requests.

``deliver_due`` is one pass (``refmatch notify send``, or a cron job); ``watch`` runs passes
until stopped (``refmatch notify watch``, which ``refmatch serve`` runs and restarts in a
process of its own, so that nothing is ever sent from inside a web request).

Nothing is lost on a crash: a row is claimed with a lease before it is sent and marked after;
a worker killed in between leaves the lease to expire and the row is sent again, so
delivery is at least once. Webhook receivers can drop the repeat by its ``webhook-id``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from refmatch.app.notify import channels
from refmatch.app.notify.outbox import Delivery, claim_due, enqueue, mark_failed_attempt, mark_sent
from refmatch.app.requests.states import WAITING
from refmatch.app.service import Service
from refmatch.config import Settings
from refmatch.domain import clock
from refmatch.store import transaction

Sender = Callable[[Settings, Delivery], None]


@dataclass
class Pass:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    overdue: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def idle(self) -> bool:
        return not (self.sent or self.retrying or self.failed or self.overdue)

    def line(self) -> str:
        text = f"notifications: {self.sent} sent, {self.retrying} to retry, {self.failed} failed"
        if self.overdue:
            text += f"; {self.overdue} request(s) became overdue"
        return text


def notice_overdue(service: Service, now: datetime | None = None) -> int:
    """Requests past their due date and still waiting: one ``request.overdue`` notice each, once. How many."""
    moment = now or clock.now()
    stamp = moment.isoformat()
    with transaction(service.db, bump=False) as conn:
        ids = [r[0] for r in conn.execute(
            f"SELECT id FROM reference_requests WHERE status IN ({','.join('?' * len(WAITING))}) "
            "AND due_at <= ? AND overdue_notified_at IS NULL ORDER BY id", (*WAITING, stamp))]  # fmt: skip
        for request_id in ids:
            enqueue(service, conn, "request.overdue", request_id, None, moment)
            conn.execute("UPDATE reference_requests SET overdue_notified_at = ? WHERE id = ?", (stamp, request_id))
    return len(ids)


def deliver_due(
    service: Service, *, now: Callable[[], datetime] = clock.now, send: Sender = channels.send, limit: int = 50
) -> Pass:
    """One pass: notice overdue requests, then send every due delivery (``limit`` at a time)."""
    result = Pass(overdue=notice_overdue(service, now()))
    while True:
        batch = claim_due(service, now(), limit)
        for delivery in batch:
            try:
                send(service.settings, delivery)
            except channels.DeliveryFailed as exc:
                status = mark_failed_attempt(service, delivery.id, str(exc), now())
                result.errors.append(f"delivery {delivery.id} ({delivery.channel} to {delivery.recipient}): {exc}")
                if status == "failed":
                    result.failed += 1
                else:
                    result.retrying += 1
            else:
                mark_sent(service, delivery.id, now())
                result.sent += 1
        if len(batch) < limit:
            return result


def watch(
    service: Service,
    *,
    interval: float = 5.0,
    stop: Callable[[], bool] = lambda: False,
    log: Callable[[str], None] = lambda _line: None,
    send: Sender = channels.send,
) -> None:
    """Deliver passes every ``interval`` seconds until ``stop()``."""
    while not stop():
        done = deliver_due(service, send=send)
        if not done.idle:
            log(done.line())
            for error in done.errors[:20]:
                log(f"  {error}")
        deadline = time.monotonic() + interval
        while not stop() and time.monotonic() < deadline:
            time.sleep(min(0.2, interval))
