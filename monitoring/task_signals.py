"""django-q2 hooks: a log context and one JSON line per task, plus the sweeper's counters."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from generation.tasks import MAINTAIN_TASK, RUN_TASK
from monitoring.logs import log_context

logger = logging.getLogger("imagegen.task")

GENERATION_TASK = RUN_TASK
SWEEPER_TASK = MAINTAIN_TASK
_started: dict[str, float] = {}


def func_name(func: Any) -> str:
    if isinstance(func, str):
        return func
    return f"{getattr(func, '__module__', '')}.{getattr(func, '__qualname__', repr(func))}"


def batch_id_for(task: dict[str, Any]) -> str | None:
    """The batch a generation task works on, so every line it logs can be found by batch."""
    if func_name(task.get("func")) != GENERATION_TASK or not task.get("args"):
        return None
    if task.get("group"):
        return str(task["group"])  # the generation queue names the batch as the task's group
    from generation import stats

    try:
        found = stats.batch_of_generation(uuid.UUID(str(task["args"][0])))
    except (ValueError, TypeError):
        return None
    return str(found) if found else None


def on_pre_execute(sender: Any, func: Any, task: dict[str, Any], **kwargs: Any) -> None:
    _started[task.get("id", "")] = time.perf_counter()
    log_context.set(
        {"task_id": task.get("id"), "task_name": task.get("name"), "func": func_name(task.get("func") or func)}
    )
    batch_id = batch_id_for(task)
    if batch_id:
        log_context.set({**(log_context.get() or {}), "batch_id": batch_id})


def on_post_execute(sender: Any, func: Any, task: dict[str, Any], **kwargs: Any) -> None:
    from monitoring.services import event_count_add

    started = _started.pop(task.get("id", ""), None)
    duration_ms = round((time.perf_counter() - started) * 1000, 2) if started else None
    success = bool(task.get("success", False))
    name = func_name(task.get("func") or func)
    try:
        logger.info("task %s %s", name, "succeeded" if success else "failed",
                    extra={"success": success, "duration_ms": duration_ms})  # fmt: skip
        # Image tasks are counted from their Generation rows; a shared counter row written by
        # every worker after every image would serialise the workers on it.
        if not (success and name == GENERATION_TASK):
            event_count_add(name="tasks.succeeded" if success else "tasks.failed")
        if name == SWEEPER_TASK and success and isinstance(task.get("result"), dict):
            for key, value in task["result"].items():
                event_count_add(name=f"sweeper.{key}", value=int(value))
    except Exception:  # counting must never fail a task
        logger.exception("Could not record task metrics")
    finally:
        log_context.set(None)
