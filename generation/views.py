"""Portal pages for generation: new batch, history, batch progress and image details."""

from __future__ import annotations

import json
import mimetypes
import secrets
import uuid
from typing import cast
from urllib.parse import quote

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.idempotency import form_token_claim, form_token_complete, form_token_result, idempotency_release
from accounts.models import IdempotencyKey
from generation import keys, selectors, services, views_library
from generation.forms import BatchForm, ProviderKeyForm
from generation.forms_output import OutputForm
from generation.history import history_rows
from generation.models import Batch, BatchSource, BatchStatus, Generation, GenerationStatus
from generation.providers import configured_providers
from generation.renditions import output_jobs_with_progress
from generation.rerun import Rerun, rerun_from_batch, rerun_from_generation
from generation.scheduler import estimates
from generation.serializers import provider_data
from imagegen.errors import ApplicationError

GRID_PAGE_SIZE = 100
HISTORY_PAGE_SIZE = 20


@login_required
def batch_list(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()
    status = request.GET.get("status", "").strip()
    cursor = request.GET.get("cursor", "")
    try:
        page = selectors.batch_page(
            user=request.user, search=search, status=status, cursor=cursor, size=HISTORY_PAGE_SIZE
        )
    except ApplicationError:  # a mangled page link: show the first page instead of an error
        page = selectors.batch_page(user=request.user, search=search, status=status, size=HISTORY_PAGE_SIZE)
        cursor = ""
    context = {
        "batches": page.items,
        "rows": history_rows(page.items, selectors.batch_thumbnail_ids(batches=page.items)),
        "next_cursor": page.next_cursor,
        "total": page.total,
        "cursor": cursor,
        "search": search,
        "status": status,
        "statuses": BatchStatus.choices,
        "filter_query": _filter_query(search=search, status=status),
        "usage": selectors.usage_summary(user=request.user),
    }
    return render(request, "generation/batch_list.html", context)


def _filter_query(*, search: str, status: str) -> str:
    """The current filters as a query-string prefix for the page links ("" or "q=...&")."""
    filters = {name: value for name, value in (("q", search), ("status", status)) if value}
    return urlencode(filters) + "&" if filters else ""


@login_required
def batch_new(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    rerun = _rerun(request) if request.method != "POST" else Rerun(initial={})
    form = BatchForm(
        request.POST or None,
        request.FILES or None,
        user_id=user.pk,
        high_priority=can_go_first(user),
        initial={"submit_token": secrets.token_urlsafe(24), **rerun.initial},
    )
    output_form = OutputForm(request.POST or None, initial=OutputForm.initial_from(rerun.output))
    if request.method == "POST":
        claim = form_token_claim(user_id=user.pk, form="new-batch", token=request.POST.get("submit_token", ""))
        if claim is not None and not claim.ours:
            return _already_submitted(request, claim.row)
        batch = None
        try:
            batch = _create_from_form(form, output_form, user)
        finally:
            if claim is not None and batch is None:
                idempotency_release(row=claim.row)  # nothing made: the corrected form may use the token
        if batch is not None:
            if claim is not None:
                form_token_complete(row=claim.row, result=str(batch.pk))
            messages.success(request, _("Batch queued: %(count)d images.") % {"count": batch.total})
            return redirect("generation:batch_detail", batch_id=batch.pk)
    context = {
        "form": form,
        "output_form": output_form,
        "providers": user_provider_data(request.user.pk),
        "posted_options": form.model_options() or rerun.options,
        "imported_rows": rerun.imported_rows,
        "estimate_url": reverse("api-batch-estimate"),
    }
    return render(request, "generation/batch_new.html", context)


def _rerun(request: HttpRequest) -> Rerun:
    """`?from=<batch>` or `?from_generation=<image>`: the user's own only (another user's is a 404)."""
    if request.GET.get("from"):
        return rerun_from_batch(selectors.batch_get(user=request.user, batch_id=request.GET["from"]))
    if request.GET.get("from_generation"):
        generation_id = request.GET["from_generation"]
        return rerun_from_generation(selectors.generation_get(user=request.user, generation_id=generation_id))
    return Rerun(initial={})


def _create_from_form(form: BatchForm, output_form: OutputForm, user: User) -> Batch | None:
    """The batch the posted forms ask for, or None with the forms' errors set."""
    if not all([form.is_valid(), output_form.is_valid()]):
        return None
    try:
        spec = services.check_batch_request(**form.batch_request(), output=output_form.output_request())
        priority = form.cleaned_data["priority"]
        return services.batch_create(owner=user, spec=spec, source=BatchSource.PORTAL, priority=priority)
    except ApplicationError as error:
        field = next(iter(error.details), None)
        if field and field.startswith("output"):
            output_form.add_service_error(field, error.message)
        else:
            field = BatchForm.FIELD_FOR_ERROR.get(field or "", field)
            form.add_error(field if field and field in form.fields else None, error.message)
        return None


def _already_submitted(request: HttpRequest, row: IdempotencyKey) -> HttpResponse:
    """A second POST of the same form: show the batch the first one made instead of making another."""
    batch_id = form_token_result(row)
    if batch_id is None:
        messages.info(request, _("This batch is still being submitted; it will appear in your history."))
        return redirect("generation:batch_list")
    messages.info(request, _("This form was already submitted; here is the batch it made."))
    return redirect("generation:batch_detail", batch_id=batch_id)


def can_go_first(user: User) -> bool:
    return user.is_staff or user.has_perm("generation.submit_high_priority")


def user_provider_data(user_id: int | None) -> list[dict[str, object]]:
    """The providers this user can use (operator-configured or their own key), as the API shows them."""
    own = keys.provider_key_names(user_id=user_id)
    return provider_data(configured_providers(user_id=user_id), own_keys=own)


@login_required
def batch_detail(request: HttpRequest, batch_id: uuid.UUID) -> HttpResponse:
    batch = selectors.batch_get(user=request.user, batch_id=batch_id)
    page = Paginator(selectors.generation_list(batch=batch), GRID_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "generation/batch_detail.html",
        {
            "batch": batch,
            "page": page,
            "pending": batch.total - batch.finished,
            "cost": batch.cost_usd,
            "estimate": estimates([batch]).get(batch.pk),
            "parameters": json.dumps(batch.parameters, ensure_ascii=False, indent=2),
            "status_labels": {**dict(BatchStatus.choices), **dict(GenerationStatus.choices)},
            "output_form": OutputForm(),
            "output_jobs": output_jobs_with_progress(batch),
            **views_library.selection_context(request),
            "webhook_deliveries": selectors.webhook_delivery_list(batch=batch)[:20],
        },
    )


@login_required
@require_POST
def batch_cancel(request: HttpRequest, batch_id: uuid.UUID) -> HttpResponse:
    return _batch_action(request, batch_id, services.batch_cancel, _("Batch cancelled."))


@login_required
@require_POST
def batch_retry(request: HttpRequest, batch_id: uuid.UUID) -> HttpResponse:
    include_permanent = request.POST.get("include_permanent") == "1"

    def retry(*, batch: Batch) -> Batch:
        return services.batch_retry_failed(batch=batch, include_permanent=include_permanent)

    return _batch_action(request, batch_id, retry, _("Failed images queued again."))


@login_required
@require_POST
def batch_pause(request: HttpRequest, batch_id: uuid.UUID) -> HttpResponse:
    return _batch_action(request, batch_id, services.batch_pause, _("Batch paused: no new image starts."))


@login_required
@require_POST
def batch_resume(request: HttpRequest, batch_id: uuid.UUID) -> HttpResponse:
    return _batch_action(request, batch_id, services.batch_resume, _("Batch resumed."))


@login_required
@require_POST
def generation_retry(request: HttpRequest, generation_id: uuid.UUID) -> HttpResponse:
    generation = selectors.generation_get(user=request.user, generation_id=generation_id)
    try:
        services.generation_retry(generation=generation)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("The image is queued again."))
    return redirect("generation:generation_detail", generation_id=generation.pk)


def _batch_action(request: HttpRequest, batch_id: uuid.UUID, action: object, done: str) -> HttpResponse:
    batch = selectors.batch_get(user=request.user, batch_id=batch_id)
    try:
        action(batch=batch)  # type: ignore[operator]
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, done)
    return redirect("generation:batch_detail", batch_id=batch.pk)


@login_required
def generation_detail(request: HttpRequest, generation_id: uuid.UUID) -> HttpResponse:
    generation = selectors.generation_get(user=request.user, generation_id=generation_id)
    siblings = list(selectors.generation_list(batch=generation.batch).values_list("id", flat=True))
    index = siblings.index(generation.pk)
    context = {
        "generation": generation,
        "batch": generation.batch,
        "previous_id": siblings[index - 1] if index > 0 else None,
        "next_id": siblings[index + 1] if index + 1 < len(siblings) else None,
        "parameters": json.dumps(generation.batch.parameters, ensure_ascii=False, indent=2),
    }
    return render(request, "generation/generation_detail.html", context)


def serve_generation_file(
    generation: Generation, field: str, *, download: bool = False
) -> FileResponse | HttpResponseRedirect:
    """Stream an image or thumbnail the caller has already been allowed to see.

    With STORAGE_PRESIGNED_URLS the object store serves the bytes instead: the answer is a
    redirect to a URL signed for a few minutes, handed out only after the same ownership check.
    """
    name = getattr(generation, field).name
    if not name:
        raise Http404
    filename = f"{generation.batch.name[:40]}-{generation.position + 1}{name[name.rfind('.') :]}"
    return serve_stored_file(name, filename=filename, download=download)


def serve_stored_file(name: str, *, filename: str, download: bool = False) -> FileResponse | HttpResponseRedirect:
    """Stream a stored file (or redirect to a presigned URL) whose ownership has already been checked."""
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if settings.STORAGE_PRESIGNED_URLS:
        return _presigned_redirect(name, content_type=content_type, filename=filename, download=download)
    if not default_storage.exists(name):
        raise Http404
    response = FileResponse(
        default_storage.open(name, "rb"), content_type=content_type, as_attachment=download, filename=filename
    )
    response["Cache-Control"] = "private, max-age=86400, immutable"
    return response


def _presigned_redirect(name: str, *, content_type: str, filename: str, download: bool) -> HttpResponseRedirect:
    disposition = "attachment" if download else "inline"
    parameters = {
        "ResponseContentType": content_type,
        "ResponseContentDisposition": f"{disposition}; filename*=UTF-8''{quote(filename)}",
    }
    url = default_storage.url(name, parameters=parameters)  # type: ignore[call-arg]
    response = HttpResponseRedirect(url)
    response["Cache-Control"] = "private, no-store"  # the signature expires; never cache the redirect
    return response


@login_required
def provider_keys(request: HttpRequest) -> HttpResponse:
    """Bring your own key: list, add or replace the user's provider keys."""
    form = ProviderKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            keys.provider_key_save(owner=cast(User, request.user), request=request, **form.cleaned_data)
        except ApplicationError as error:
            form.add_error(next(iter(error.details), None), error.message)
        else:
            messages.success(request, _("Key saved. Your batches on this provider now use it."))
            return redirect("generation:provider_keys")
    labels = keys.key_providers()
    rows = [(key, labels.get(key.provider, key.provider)) for key in keys.provider_key_list(user=request.user)]
    context = {"form": form, "rows": rows}
    return render(request, "generation/provider_keys.html", context)


@login_required
@require_POST
def provider_key_delete(request: HttpRequest, provider: str) -> HttpResponse:
    keys.provider_key_delete(owner=cast(User, request.user), provider=provider, request=request)
    messages.success(request, _("Key deleted."))
    return redirect("generation:provider_keys")
