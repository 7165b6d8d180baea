"""django-q2 tasks and the hand-off to the broker: thin wrappers around the engine's services.

Task names are defined here once; the queue, the schedules and the monitoring signals use them.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.conf import Conf

from generation import engine, queue, renditions, runner, scheduler, webhooks
from generation.rollups import rollup_advance
from generation.scheduler import Dispatched

logger = logging.getLogger(__name__)

RUN_TASK = "generation.tasks.run_generation"
MAINTAIN_TASK = "generation.tasks.sweep"
ROLLUP_TASK = "generation.tasks.rollup"
WEBHOOK_TASK = "generation.tasks.send_webhook"
OUTPUT_TASK = "generation.tasks.reprocess_generation"
CHAIN_MARGIN_SECONDS = 5
_inline = threading.local()


def run_generation(generation_id: str, attempt: int | None = None) -> str:
    """Render one dispatched attempt, then go on with what the scheduler picks next for the freed slot.

    The worker keeps its slot for the next image while the task's time allows one more whole
    attempt: the scheduler still decides what comes next (fair share, priority, permits), and the
    image skips the round trip through the broker.
    """
    started = time.monotonic()
    status = "rescheduled"  # a task queued before the scheduler existed carries no attempt
    if attempt is not None:
        status = runner.generation_run(generation_id=uuid.UUID(generation_id), attempt=int(attempt))
    while not Conf.SYNC and time.monotonic() - started < chain_window():
        following = _dispatch_for_this_worker()
        if following is None:
            return status
        runner.generation_run(generation_id=following.generation_id, attempt=following.attempt)
    dispatch_now()
    return status


def chain_window() -> float:
    """How long after its start a task may still take up another image and finish within its timeout."""
    spare = settings.GENERATION_TASK_TIMEOUT - settings.GENERATION_LONGEST_ATTEMPT_SECONDS - CHAIN_MARGIN_SECONDS
    return max(0.0, min(settings.ENGINE_CHAIN_SECONDS, spare))


def _dispatch_for_this_worker() -> Dispatched | None:
    """Dispatch to the free slots; this worker keeps the first and the broker carries the rest."""
    dispatched = _dispatch_and_push(keep=1)
    return dispatched[0] if dispatched else None


def _dispatch_and_push(*, keep: int) -> list[Dispatched]:
    """Dispatch to the free slots and put all but the first `keep` on the broker once committed.

    Never raises: work that could not be dispatched now stays pending and the node loop retries.
    """
    try:
        dispatched = scheduler.dispatch()
    except Exception:
        logger.exception("Dispatching failed; the node loop will try again")
        return []
    if len(dispatched) > keep:
        for_broker = dispatched[keep:]
        transaction.on_commit(lambda: queue.push(RUN_TASK, for_broker))
    return dispatched


def sweep() -> dict[str, int]:
    """Scheduled every minute as a safety net; each node's own loop does the same every second."""
    result = engine.maintain()
    result["dispatched"] = dispatch_now()
    result["webhooks"] = webhooks_dispatch()
    return result


def send_webhook(delivery_id: str, attempt: int) -> str:
    """Send one claimed webhook attempt (claimed by `webhooks_dispatch`)."""
    return webhooks.delivery_send(delivery_id=uuid.UUID(delivery_id), attempt=int(attempt), sender=runner.worker_id())


def webhooks_dispatch() -> int:
    """Claim the webhook deliveries that are due and put one task each on the broker once committed.

    Run by every node's loop each tick and by the sweep; with the synchronous queue the tasks run
    right here. Never raises: a delivery not claimed now is claimed at the next tick.
    """
    try:
        claims = webhooks.deliveries_claim(now=timezone.now())
    except Exception:
        logger.exception("Claiming webhook deliveries failed; the node loop will try again")
        return 0
    if claims:
        transaction.on_commit(lambda: queue.push_webhooks(WEBHOOK_TASK, claims))
    return len(claims)


def dispatch_now() -> int:
    """Give due work to free workers; with the synchronous queue (tests, Q_SYNC) run it right here.

    Never raises: work that could not be dispatched now stays pending and the node loop retries.
    """
    if Conf.SYNC:
        count = _drain_inline()
        webhooks_dispatch()  # the batches that just finished send their webhooks, as a node would
        return count
    return len(_dispatch_and_push(keep=0))


def _wait_for_short_backoff() -> bool:
    """Inline, a retry due within GENERATION_RETRY_INLINE_SECONDS is waited for, as a worker would."""
    due = scheduler.next_due_retry()
    if due is None:
        return False
    wait = (due - timezone.now()).total_seconds()
    if wait > settings.GENERATION_RETRY_INLINE_SECONDS:
        return False
    time.sleep(max(0.0, wait))
    return True


def _drain_inline() -> int:
    if getattr(_inline, "draining", False):
        return 0  # a task run inline asked for more work: the loop below goes on with it
    _inline.draining = True
    count = 0
    try:
        while True:
            dispatched = scheduler.dispatch(slots=1)
            if not dispatched and not _wait_for_short_backoff():
                break
            for item in dispatched:
                runner.generation_run(generation_id=item.generation_id, attempt=item.attempt)
            count += len(dispatched)
    finally:
        _inline.draining = False
    return count


def rollup() -> dict[str, object]:
    return rollup_advance()


def reprocess_generation(job_id: str, generation_id: str) -> str:
    """Make one image's rendition for a re-processing job, from the stored original (no provider call)."""
    return renditions.output_job_run(job_id=uuid.UUID(job_id), generation_id=uuid.UUID(generation_id))
