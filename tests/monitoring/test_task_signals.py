"""Task hooks: every log line of an image task names its batch."""

from __future__ import annotations

import uuid

from monitoring.task_signals import GENERATION_TASK, batch_id_for


def test_the_batch_comes_from_the_task_group_without_a_query(db, django_assert_num_queries):
    batch_id = str(uuid.uuid4())
    task = {"func": GENERATION_TASK, "args": (str(uuid.uuid4()),), "group": batch_id}
    with django_assert_num_queries(0):
        assert batch_id_for(task) == batch_id


def test_without_a_group_the_batch_is_looked_up(make_batch):
    generation = make_batch(run=False).generations.first()
    task = {"func": GENERATION_TASK, "args": (str(generation.pk),)}
    assert batch_id_for(task) == str(generation.batch_id)


def test_other_tasks_have_no_batch(db):
    assert batch_id_for({"func": "generation.tasks.sweep", "args": ()}) is None
