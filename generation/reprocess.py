"""Re-processing a batch: new output settings applied to its succeeded images by the workers.

The provider is not called again: each task derives a rendition from the stored original.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from generation import queue, tasks
from generation.models import Batch, GenerationStatus, OutputJob
from generation.output import check_output
from generation.parameters import BatchParameters
from imagegen.errors import Conflict, ValidationFailed


def batch_reprocess(*, batch: Batch, output: Any) -> OutputJob:
    """Queue one rendition task per succeeded image of `batch`; 409 when it has none yet."""
    parameters = BatchParameters.from_json(batch.parameters)
    settings = check_output(output, source_size=(parameters.width, parameters.height))
    if settings is None:
        message = _("These settings give back the original PNG; choose another format, size, watermark or metadata.")
        raise ValidationFailed(message, code="invalid_output", details={"output": [message]})
    succeeded = batch.generations.filter(status=GenerationStatus.SUCCEEDED, deleted_at__isnull=True)
    ids = list(succeeded.values_list("id", flat=True))
    if not ids:
        raise Conflict(_("This batch has no finished images to re-process."), code="nothing_to_reprocess")
    with transaction.atomic():
        job = OutputJob.objects.create(
            batch=batch, settings=settings.to_json(), settings_hash=settings.settings_hash, total=len(ids)
        )
        transaction.on_commit(lambda: queue.push_output_job(tasks.OUTPUT_TASK, job.pk, ids))
    return job
