"""Portal action for post-processing: re-process a batch's finished images with other output settings."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from generation import reprocess, selectors
from generation.forms_output import OutputForm
from imagegen.errors import ApplicationError


@login_required
@require_POST
def batch_reprocess(request: HttpRequest, batch_id: uuid.UUID) -> HttpResponse:
    batch = selectors.batch_get(user=request.user, batch_id=batch_id)
    form = OutputForm(request.POST)
    if not form.is_valid():
        problems = [
            f"{form.fields[name].label}: {error}" if name in form.fields else str(error)
            for name, errors in form.errors.items()
            for error in errors
        ]
        messages.error(request, " ".join(problems))
        return redirect("generation:batch_detail", batch_id=batch.pk)
    try:
        job = reprocess.batch_reprocess(batch=batch, output=form.output_request())
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request, _("Re-processing %(count)d images; the provider is not called again.") % {"count": job.total}
        )
    return redirect("generation:batch_detail", batch_id=batch.pk)
