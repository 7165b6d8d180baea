"""Derived files of generated images: made in the worker, stored beside the original, deleted with it.

`rendition_make` is idempotent per image and settings (a unique hash), so a task delivered twice
or a batch re-processed twice with the same settings stores one file. The provider is never
called here: every rendition is made from the stored original.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from generation.models import Batch, Generation, GenerationStatus, OutputJob, Rendition
from generation.output import EXTENSIONS, OutputSettings, embedded_metadata, output_render
from imagegen.errors import NotFound

logger = logging.getLogger(__name__)


def rendition_make(*, generation_id: uuid.UUID, output: OutputSettings) -> Rendition:
    """The rendition of one succeeded image with these settings: the existing one, or a new file."""
    settings_hash = output.settings_hash
    existing = Rendition.objects.filter(generation_id=generation_id, settings_hash=settings_hash).first()
    if existing is not None:
        return existing
    generation = Generation.objects.get(pk=generation_id, status=GenerationStatus.SUCCEEDED)
    with default_storage.open(str(generation.image.name), "rb") as original:
        source = original.read()
    metadata = embedded_metadata(
        prompt=generation.prompt,
        negative_prompt=generation.negative_prompt,
        seed=generation.seed,
        model=generation.model,
        provider=generation.provider,
    )
    encoded = output_render(source, output, metadata=metadata)
    wanted = f"renditions/{generation.batch_id}/{generation.pk}-{settings_hash[:16]}.{EXTENSIONS[output.format]}"
    name = default_storage.save(wanted, ContentFile(encoded.data))
    try:
        with transaction.atomic():
            return Rendition.objects.create(
                generation=generation,
                settings_hash=settings_hash,
                settings=output.to_json(),
                format=encoded.format,
                file=name,
                width=encoded.width,
                height=encoded.height,
                bytes=len(encoded.data),
            )
    except IntegrityError:  # the same task ran twice at once: keep the first file
        default_storage.delete(name)
        return Rendition.objects.get(generation_id=generation_id, settings_hash=settings_hash)


def rendition_make_quietly(*, generation_id: uuid.UUID, output: OutputSettings) -> Rendition | None:
    """For the runner: a rendition that cannot be made is logged; the original image stands."""
    try:
        return rendition_make(generation_id=generation_id, output=output)
    except Exception:
        logger.exception("Post-processing generation %s failed; its original image is kept", generation_id)
        return None


def output_job_run(*, job_id: uuid.UUID, generation_id: uuid.UUID) -> str:
    """One image of a re-processing job; a failure is recorded once per image."""
    job = OutputJob.objects.filter(pk=job_id).first()
    if job is None:
        return "skipped"  # the batch was deleted meanwhile
    if rendition_make_quietly(generation_id=generation_id, output=OutputSettings.from_json(job.settings)):
        return "done"
    with transaction.atomic():
        job = OutputJob.objects.select_for_update().get(pk=job_id)
        if str(generation_id) not in job.failed_ids:
            job.failed_ids = [*job.failed_ids, str(generation_id)]
            job.save(update_fields=["failed_ids"])
    return "failed"


def renditions_detach(*, generation_ids: Iterable[uuid.UUID]) -> list[str]:
    """Delete these images' rendition rows and return their files, for the caller to remove once its
    transaction commits (the library keeps deleted images' rows, so nothing cascades)."""
    renditions = Rendition.objects.filter(generation_id__in=list(generation_ids))
    names = [name for name in renditions.values_list("file", flat=True) if name]
    renditions.delete()
    return names


def renditions_delete(*, generation_ids: Iterable[uuid.UUID]) -> int:
    """Delete the renditions of these images, files first; call before deleting the images themselves."""
    renditions = list(Rendition.objects.filter(generation_id__in=list(generation_ids)))
    for rendition in renditions:
        if rendition.file.name:
            default_storage.delete(rendition.file.name)
    Rendition.objects.filter(pk__in=[r.pk for r in renditions]).delete()
    return len(renditions)


# -- reads ----------------------------------------------------------------------------------------


def rendition_get(*, user: AbstractBaseUser | AnonymousUser, rendition_id: uuid.UUID) -> Rendition:
    """One of the user's renditions; another user's is the same NotFound as a missing one."""
    rendition = (
        Rendition.objects.select_related("generation__batch")
        .filter(pk=rendition_id, generation__batch__owner_id=user.pk)
        .first()
    )
    if rendition is None:
        raise NotFound(_("No such file."))
    return rendition


def output_job_progress(job: OutputJob) -> dict[str, object]:
    """How far a re-processing job has got: done and failed images out of its total."""
    done = Rendition.objects.filter(generation__batch_id=job.batch_id, settings_hash=job.settings_hash).count()
    done = min(done, job.total)
    failed = len(job.failed_ids)
    return {"done": done, "failed": failed, "status": "finished" if done + failed >= job.total else "running"}


def output_jobs_with_progress(batch: Batch) -> list[tuple[OutputJob, dict[str, object]]]:
    """The batch's re-processing jobs, newest first, each with its progress."""
    return [(job, output_job_progress(job)) for job in batch.output_jobs.all()]
