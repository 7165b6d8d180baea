"""Portal pages for A/B comparisons: list, new comparison, side by side with votes and the summary."""

from __future__ import annotations

import uuid
from typing import cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from generation import comparisons
from generation.forms_comparisons import ARM_FIELD_FOR_ERROR, ComparisonForm
from generation.models import BatchSource, BatchStatus, GenerationStatus
from generation.views import user_provider_data
from imagegen.errors import ApplicationError

LIST_PAGE_SIZE = 20


@login_required
def comparison_list(request: HttpRequest) -> HttpResponse:
    cursor = request.GET.get("cursor", "")
    try:
        page = comparisons.comparison_page(user=request.user, cursor=cursor, size=LIST_PAGE_SIZE)
    except ApplicationError:  # a mangled page link: show the first page instead of an error
        page = comparisons.comparison_page(user=request.user, size=LIST_PAGE_SIZE)
        cursor = ""
    rows = [(c, comparisons.comparison_is_active(c)) for c in page.items]
    context = {"rows": rows, "next_cursor": page.next_cursor, "total": page.total, "cursor": cursor}
    return render(request, "generation/comparisons/list.html", context)


@login_required
def comparison_new(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    form = ComparisonForm(request.POST or None, user_id=user.pk)
    if request.method == "POST" and form.is_valid():
        try:
            spec = comparisons.check_comparison_request(**form.comparison_request())
            comparison = comparisons.comparison_create(owner=user, spec=spec, source=BatchSource.PORTAL)
        except ApplicationError as error:
            _show_error(form, error)
        else:
            messages.success(request, _("Comparison queued: %(count)d configurations.") % {"count": len(spec.arms)})
            return redirect("comparisons:comparison_detail", comparison_id=comparison.pk)
    context = {"form": form, "arms": form.arm_fields(), "providers": user_provider_data(user.pk)}
    return render(request, "generation/comparisons/new.html", context)


def _show_error(form: ComparisonForm, error: ApplicationError) -> None:
    """Put a service's error next to the input it is about (an arm's error on that arm's field)."""
    details = error.details
    if "arm" in details:
        index = form.used_arm_numbers()[int(details["arm"])]
        name = next((ARM_FIELD_FOR_ERROR[key] for key in details if key in ARM_FIELD_FOR_ERROR), "options")
        form.add_error(f"arm{index}_{name}", error.message)
        return
    field = next((key for key in details if key in ("prompts", "seed", "name")), None)
    form.add_error(field, error.message)


@login_required
def comparison_detail(request: HttpRequest, comparison_id: uuid.UUID) -> HttpResponse:
    comparison = comparisons.comparison_get(user=request.user, comparison_id=comparison_id)
    arms = list(comparison.arms.all())
    context = {
        "comparison": comparison,
        "arms": arms,
        "rows": comparisons.comparison_rows(comparison),
        "summary": comparisons.comparison_summary(comparison),
        "active": comparisons.comparison_is_active(comparison),
        "api_url": reverse("api-comparison-detail", args=[comparison.pk]),
        "status_labels": {**dict(BatchStatus.choices), **dict(GenerationStatus.choices)},
    }
    return render(request, "generation/comparisons/detail.html", context)


@login_required
@require_POST
def comparison_cancel(request: HttpRequest, comparison_id: uuid.UUID) -> HttpResponse:
    comparison = comparisons.comparison_get(user=request.user, comparison_id=comparison_id)
    cancelled = comparisons.comparison_cancel(comparison=comparison)
    if cancelled:
        messages.success(request, _("Comparison cancelled: what was made stays."))
    else:
        messages.info(request, _("Every configuration had already ended."))
    return redirect("comparisons:comparison_detail", comparison_id=comparison.pk)


@login_required
@require_POST
def comparison_vote(request: HttpRequest, comparison_id: uuid.UUID) -> HttpResponse:
    comparison = comparisons.comparison_get(user=request.user, comparison_id=comparison_id)
    choice = request.POST.get("winner", "")
    try:
        prompt_index = int(request.POST.get("prompt_index", ""))
        winner = None if choice == "tie" else int(choice)
    except ValueError:
        messages.error(request, _("Choose a configuration or a tie."))
        return redirect("comparisons:comparison_detail", comparison_id=comparison.pk)
    try:
        comparisons.comparison_vote(comparison=comparison, prompt_index=prompt_index, winner=winner)
    except ApplicationError as error:
        messages.error(request, error.message)
    url = reverse("comparisons:comparison_detail", args=[comparison.pk])
    return redirect(f"{url}#prompt-{prompt_index + 1}")
