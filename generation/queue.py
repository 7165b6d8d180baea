"""Putting dispatched generations on the django-q2 broker: the only code that enqueues into it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol
from uuid import UUID

from django_q.brokers import get_broker
from django_q.tasks import async_task


class Attempt(Protocol):
    @property
    def generation_id(self) -> UUID: ...
    @property
    def attempt(self) -> int: ...
    @property
    def batch_id(self) -> UUID: ...


class Claim(Protocol):
    @property
    def delivery_id(self) -> UUID: ...
    @property
    def attempt(self) -> int: ...


def push(task: str, dispatched: Iterable[Attempt]) -> None:
    """One task per dispatched attempt. A task whose attempt was handed on meanwhile does nothing."""
    broker = get_broker()
    for item in dispatched:
        # The Generation row records every outcome, so django-q keeps only failed task results.
        async_task(
            task,
            str(item.generation_id),
            item.attempt,
            broker=broker,
            task_name=f"generation-{item.generation_id}-{item.attempt}",
            group=str(item.batch_id),
            save=False,
        )


def push_webhooks(task: str, claims: Iterable[Claim]) -> None:
    """One task per claimed webhook attempt; a second copy of a task sends nothing."""
    broker = get_broker()
    for claim in claims:
        async_task(
            task,
            str(claim.delivery_id),
            claim.attempt,
            broker=broker,
            task_name=f"webhook-{claim.delivery_id}-{claim.attempt}",
            save=False,
        )


def push_output_job(task: str, job_id: UUID, generation_ids: Iterable[UUID]) -> None:
    """One task per image of a re-processing job; a task delivered twice finds its rendition made."""
    broker = get_broker()
    for generation_id in generation_ids:
        async_task(
            task,
            str(job_id),
            str(generation_id),
            broker=broker,
            task_name=f"output-{job_id}-{generation_id}",
            group=str(job_id),
            save=False,
        )


def queue_size() -> int:
    """Tasks waiting in the broker (the ORM broker also counts tasks leased to a worker)."""
    broker = get_broker()
    size = broker.queue_size() or 0
    lock_size = getattr(broker, "lock_size", None)
    return size + (lock_size() or 0 if lock_size else 0)
