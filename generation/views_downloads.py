"""Portal downloads: a batch, or the images selected in the library, as one streamed ZIP."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from generation import library, selectors
from generation.archive import archive_response, download_status, selection_filename
from imagegen.errors import ValidationFailed


@login_required
@require_GET
def batch_download(request: HttpRequest, batch_id: uuid.UUID) -> HttpResponse | StreamingHttpResponse:
    batch = selectors.batch_get(user=request.user, batch_id=batch_id)
    try:
        status = download_status(request.GET.get("status", "").strip())
    except ValidationFailed as error:
        messages.error(request, error.message)
        return redirect("generation:batch_detail", batch_id=batch.pk)
    return archive_response(selectors.generation_list(batch=batch, status=status), f"{batch.name}.zip")


@login_required
@require_GET
def collection_download(request: HttpRequest, collection_id: uuid.UUID) -> StreamingHttpResponse:
    collection = library.collection_get(user=request.user, collection_id=collection_id)
    return archive_response(library.collection_generations(collection=collection), f"{collection.name}.zip")


@login_required
@require_POST
def download_selection(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The images posted as repeated `ids` fields (the library's selection bar); another user's id is a 404."""
    try:
        generations = selectors.download_selection(user=request.user, ids=request.POST.getlist("ids"))
    except ValidationFailed as error:
        messages.error(request, error.message)
        back = request.POST.get("next", "")
        safe = url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()})
        return redirect(back if back and safe else "generation:batch_list")
    return archive_response(generations, selection_filename())
