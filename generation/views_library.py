"""Portal pages of the library: all my images, favourites, collections, and deleting with a confirm step."""

from __future__ import annotations

import uuid
from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from generation import library, selectors
from generation.models import Collection, GenerationStatus
from generation.providers import configured_providers
from imagegen.errors import ApplicationError

LIBRARY_PAGE_SIZE = 60
FILTER_NAMES = ("q", "provider", "model", "size", "status", "since", "until", "favourite")
# Built by the ZIP download slice; the button shows only once that view exists.
DOWNLOAD_SELECTION_URL = "generation:download_selection"


def _next_url(request: HttpRequest, default: str) -> str:
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    if wanted and url_has_allowed_host_and_scheme(wanted, {request.get_host()}, require_https=request.is_secure()):
        return wanted
    return default


def _download_selection_url() -> str | None:
    try:
        return reverse(DOWNLOAD_SELECTION_URL)
    except NoReverseMatch:
        return None


def selection_context(request: HttpRequest) -> dict[str, Any]:
    """What the selection bar and the tiles' star forms need on any grid page."""
    return {
        "collections": library.collection_list(user=request.user),
        "download_url": _download_selection_url(),
        "here": request.get_full_path(),
    }


def _grid_context(request: HttpRequest, *, collection: Collection | None = None) -> dict[str, Any]:
    """A page of the library (or of one collection) for the filters in the query string."""
    query = {name: request.GET.get(name, "").strip() for name in FILTER_NAMES}
    given = {name: value for name, value in query.items() if value}
    try:
        filters = selectors.library_filters({**given, **({"collection": str(collection.pk)} if collection else {})})
    except ApplicationError as error:
        messages.error(request, error.message)
        filters = selectors.LibraryFilters(collection_id=collection.pk if collection else None)
        query = dict.fromkeys(FILTER_NAMES, "")
    cursor = request.GET.get("cursor", "")
    try:
        page = selectors.library_page(user=request.user, cursor=cursor, size=LIBRARY_PAGE_SIZE, filters=filters)
    except ApplicationError:  # a mangled "load more" link: start again from the newest
        page = selectors.library_page(user=request.user, size=LIBRARY_PAGE_SIZE, filters=filters)
    kept = {name: value for name, value in query.items() if value}
    return {
        "generations": page.items,
        "next_url": "?" + urlencode({**kept, "cursor": page.next_cursor}) if page.next_cursor else "",
        "query": query,
        "filtered": bool(kept),
        "statuses": GenerationStatus.choices,
        "providers": sorted(configured_providers(user_id=request.user.pk)),
        **selection_context(request),
    }


@login_required
def library_page(request: HttpRequest) -> HttpResponse:
    return render(request, "generation/library.html", _grid_context(request))


@login_required
def collection_list(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        try:
            collection = library.collection_create(owner=cast(User, request.user), name=request.POST.get("name", ""))
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, _("Collection created."))
            return redirect("generation:collection_detail", collection_id=collection.pk)
    return render(
        request, "generation/collection_list.html", {"collections": library.collection_list(user=request.user)}
    )


@login_required
def collection_detail(request: HttpRequest, collection_id: uuid.UUID) -> HttpResponse:
    collection = library.collection_get(user=request.user, collection_id=collection_id)
    if request.method == "POST":
        try:
            library.collection_rename(collection=collection, name=request.POST.get("name", ""))
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, _("Collection renamed."))
        return redirect("generation:collection_detail", collection_id=collection.pk)
    context = {**_grid_context(request, collection=collection), "collection": collection}
    return render(request, "generation/collection_detail.html", context)


@login_required
def collection_delete(request: HttpRequest, collection_id: uuid.UUID) -> HttpResponse:
    collection = library.collection_get(user=request.user, collection_id=collection_id)
    if request.method == "POST":
        library.collection_delete(collection=collection)
        messages.success(request, _("Collection deleted. Its images are still in your library."))
        return redirect("generation:collection_list")
    question = _("Delete the collection “%(name)s”? Its images stay in your library.") % {"name": collection.name}
    return _confirm(request, question, cancel=reverse("generation:collection_detail", args=[collection.pk]))


@login_required
@require_POST
def generation_favourite(request: HttpRequest, generation_id: uuid.UUID) -> HttpResponse:
    """Star (favourite=1) or unstar (favourite=0); answers JSON to the page's script, else goes back."""
    generation = selectors.generation_get(user=request.user, generation_id=generation_id)
    generation = library.generation_favourite_set(generation=generation, favourite=request.POST.get("favourite") == "1")
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"id": str(generation.pk), "favourite": generation.favourite})
    return redirect(_next_url(request, reverse("generation:library")))


@login_required
def generation_delete(request: HttpRequest, generation_id: uuid.UUID) -> HttpResponse:
    generation = selectors.generation_get(user=request.user, generation_id=generation_id)
    back = reverse("generation:batch_detail", args=[generation.batch_id])
    if request.method == "POST":
        try:
            library.generations_delete(generations=[generation])
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, _("Image deleted."))
        return redirect(_next_url(request, back))
    return _confirm(
        request, _("Delete this image and its file? This cannot be undone."), cancel=_next_url(request, back)
    )


@login_required
def batch_delete(request: HttpRequest, batch_id: uuid.UUID) -> HttpResponse:
    batch = selectors.batch_get(user=request.user, batch_id=batch_id)
    back = reverse("generation:batch_detail", args=[batch.pk])
    if request.method == "POST":
        try:
            library.batch_delete(batch=batch)
        except ApplicationError as error:
            messages.error(request, error.message)
            return redirect(back)
        messages.success(request, _("Batch deleted."))
        return redirect("generation:batch_list")
    if batch.is_active:
        messages.error(request, _("This batch is still running; cancel it before deleting it."))
        return redirect(back)
    question = ngettext(
        "Delete the batch “%(name)s” and its %(count)d image? This cannot be undone.",
        "Delete the batch “%(name)s” and its %(count)d images? This cannot be undone.",
        batch.listed,
    ) % {"name": batch.name, "count": batch.listed}
    return _confirm(request, question, cancel=back)


@login_required
@require_POST
def library_selection(request: HttpRequest) -> HttpResponse:
    """The selection bar: delete (after a confirm step), add to or remove from a collection."""
    back = _next_url(request, reverse("generation:library"))
    action = request.POST.get("action", "")
    try:
        generations = library.owned_generations(user=request.user, ids=request.POST.getlist("ids"))
        if action == "delete":
            if request.POST.get("confirm") != "1":
                return _confirm_selection(request, generations, back)
            count = library.generations_delete(generations=generations)
            messages.success(
                request, ngettext("%(count)d image deleted.", "%(count)d images deleted.", count) % {"count": count}
            )
        elif action in ("add", "remove"):
            collection = library.collection_get(user=request.user, collection_id=request.POST.get("collection", ""))
            change = library.collection_items_add if action == "add" else library.collection_items_remove
            count = change(collection=collection, generations=generations)
            done = _("%(count)d added to “%(name)s”.") if action == "add" else _("%(count)d removed from “%(name)s”.")
            messages.success(request, done % {"count": count, "name": collection.name})
        else:
            messages.error(request, _("Choose what to do with the selected images."))
    except ApplicationError as error:
        messages.error(request, error.message)
    return redirect(back)


def _confirm(request: HttpRequest, question: str, *, cancel: str, ids: list[str] | None = None) -> HttpResponse:
    context = {"question": question, "cancel": cancel, "next": _next_url(request, cancel), "ids": ids or []}
    return render(request, "generation/confirm_delete.html", context)


def _confirm_selection(request: HttpRequest, generations: list[Any], back: str) -> HttpResponse:
    question = ngettext(
        "Delete %(count)d image and its file? This cannot be undone.",
        "Delete %(count)d images and their files? This cannot be undone.",
        len(generations),
    ) % {"count": len(generations)}
    return _confirm(request, question, cancel=back, ids=[str(g.pk) for g in generations])
