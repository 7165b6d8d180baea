"""Generation REST endpoints: thin views over the batch services and selectors."""

from __future__ import annotations

import uuid
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import User
from django.http.response import HttpResponseBase
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers as drf_serializers
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from accounts.idempotency import make_once
from generation import etags, imports, keys, library, selectors, services
from generation.api_output import GenerationDetailSerializer
from generation.models import BatchSource
from generation.scheduler import estimates
from generation.serializers import (
    BatchCreatedSerializer,
    BatchCreateSerializer,
    BatchEstimateSerializer,
    BatchImportSerializer,
    BatchRetrySerializer,
    BatchSerializer,
    GenerationSerializer,
    ProviderKeyCreateSerializer,
    ProviderKeySerializer,
    ProviderSerializer,
    UsageSerializer,
)
from generation.views import serve_generation_file, user_provider_data
from imagegen.conditional import IF_NONE_MATCH, NOT_MODIFIED, conditional
from imagegen.errors import ValidationFailed
from imagegen.pagination import KeysetPage, page_number_from, page_size_from

BATCH_REQUEST = {"application/json": BatchCreateSerializer, "multipart/form-data": BatchImportSerializer}
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
PAGING = [
    OpenApiParameter(
        "cursor",
        str,
        description="The `next_cursor` of the previous page; omit for the first page.",
    ),
    OpenApiParameter("page_size", int, description="Items per page (at most 200)."),
]
LIST_FILTERS = [
    OpenApiParameter(
        "search", str, description="Words (by prefix) or CJK text in the batch name or any of its prompts."
    ),
    OpenApiParameter("status", str, description="Only batches in this status."),
    *PAGING,
]
LIBRARY_FILTERS = [
    OpenApiParameter("search", str, description="Words (by prefix) or CJK text in the image's prompt."),
    OpenApiParameter("provider", str, description="Only images made by this provider."),
    OpenApiParameter("model", str, description="Only images made by this model."),
    OpenApiParameter("status", str, description="Only images in this status."),
    OpenApiParameter(
        "size",
        str,
        pattern=r"^\d{1,5}[xX×]\d{1,5}$",
        description="Only images of this size, `WIDTHxHEIGHT` (e.g. `1024x1024`).",
    ),
    OpenApiParameter(
        "since",
        OpenApiTypes.DATETIME,
        description="Batches created at or after this moment; a plain date (`2025-01-31`) means its start.",
    ),
    OpenApiParameter(
        "until",
        OpenApiTypes.DATETIME,
        description="Batches created before this moment; a plain date (`2025-01-31`) includes that whole day.",
    ),
    OpenApiParameter("favourite", str, enum=["true", "false"], description="`true`: only starred images."),
    OpenApiParameter(
        "collection", str, pattern=UUID_PATTERN, description="Only images in this collection of yours (its id)."
    ),
    *PAGING,
]


def keyset_page_schema(name: str, item: type[BaseSerializer]) -> Any:
    """The documented shape of a keyset page of `item`."""
    return inline_serializer(
        name=name,
        fields={
            "count": drf_serializers.IntegerField(allow_null=True),
            "next": drf_serializers.URLField(allow_null=True),
            "next_cursor": drf_serializers.CharField(allow_null=True),
            "results": item(many=True),
        },
    )


def keyset_response(
    request: Request, page: KeysetPage[Any], serializer: type[BaseSerializer], context: dict[str, Any] | None = None
) -> Response:
    """The list shape every list endpoint answers: count (null when not cheap), next, next_cursor, results."""
    next_url = None
    if page.next_cursor:
        next_url = replace_query_param(request.build_absolute_uri(), "cursor", page.next_cursor)
    return Response(
        {
            "count": page.total,
            "next": next_url,
            "next_cursor": page.next_cursor,
            "results": serializer(page.items, many=True, context={"request": request, **(context or {})}).data,
        }
    )


def first_page_if_stale(read: Any, **arguments: Any) -> Any:
    """A cursor that is not one of ours (mangled link, old bookmark) gives the first page, not an error."""
    try:
        return read(**arguments)
    except ValidationFailed as error:
        if error.code != "invalid_cursor":
            raise
        return read(**{**arguments, "cursor": ""})


def read_page(request: Request, read: Any, **arguments: Any) -> Any:
    """One page of `read` at the request's `cursor` and `page_size` (a stale cursor: the first page)."""
    size = page_size_from(query_param(request, "page_size"))
    return first_page_if_stale(read, cursor=query_param(request, "cursor"), size=size, **arguments)


def _variant(request: Request) -> tuple[str, list[tuple[str, list[str]]]]:
    """What besides the data shapes a response: its absolute URLs (host name) and query string."""
    return request.build_absolute_uri("/"), sorted(request.query_params.lists())


def query_param(request: Request, name: str) -> str:
    return str(request.query_params.get(name, "")).strip()


class BatchListCreateView(GenericAPIView):
    serializer_class = BatchSerializer

    pagination_class = None  # keyset pages: see keyset_response

    @extend_schema(
        operation_id="v1_batches_list",
        parameters=[*LIST_FILTERS, IF_NONE_MATCH],
        responses={200: keyset_page_schema("BatchPage", BatchSerializer), 304: NOT_MODIFIED},
    )
    def get(self, request: Request) -> Response:
        page = read_page(
            request,
            selectors.batch_page,
            user=request.user,
            search=query_param(request, "search"),
            status=query_param(request, "status"),
        )
        known = estimates(page.items)
        etag = etags.batch_page_etag(
            request.user.pk, page.items, known, page.total, page.next_cursor, _variant(request)
        )
        return conditional(request, etag, lambda: keyset_response(request, page, BatchSerializer, {"estimates": known}))

    @extend_schema(request=BATCH_REQUEST, responses={201: BatchCreatedSerializer})
    def post(self, request: Request) -> Response:
        spec, priority = checked_batch_request(request)
        owner = cast(User, request.user)
        batch, estimate = make_once(
            request,
            make=lambda: services.batch_create_estimated(
                owner=owner, spec=spec, source=BatchSource.API, priority=priority
            ),
            batch_of=lambda made: made[0].pk,
            resume=lambda batch_id: (
                selectors.batch_get(user=owner, batch_id=batch_id),
                services.batch_estimate(owner=owner, spec=spec),
            ),
        )
        context = {"request": request, "estimate": estimate.as_dict()}
        return Response(BatchCreatedSerializer(batch, context=context).data, status=status.HTTP_201_CREATED)


class BatchEstimateView(APIView):
    @extend_schema(
        request=BATCH_REQUEST,
        responses=BatchEstimateSerializer,
        description="Check a batch request as `POST /batches/` would and say what it would make and cost, and the "
        "quota left; nothing is created.",
    )
    def post(self, request: Request) -> Response:
        spec, _priority = checked_batch_request(request)
        estimate = services.batch_estimate(owner=cast(User, request.user), spec=spec)
        return Response(estimate.as_dict())


def checked_batch_request(request: Request) -> tuple[services.BatchSpec, int]:
    """A create (or estimate) request as JSON or multipart with a `file`, checked; and its priority."""
    multipart = (request.content_type or "").startswith("multipart/")
    data = (BatchImportSerializer if multipart else BatchCreateSerializer)(data=request.data)
    data.is_valid(raise_exception=True)
    fields = dict(data.validated_data)
    priority = fields.pop("priority")
    upload = fields.pop("file", None)
    if upload is not None:
        if upload.size > settings.MAX_UPLOAD_BYTES:
            raise ValidationFailed(_("The file is larger than 2 MB."), code="file_too_large", details={"file": []})
        imported = imports.import_file(upload.read(), filename=upload.name or "")
        if imported.items and (fields["prompts"] or fields["items"]):
            imports.refuse_prompts_and_items()
        fields["prompts"] = [*fields["prompts"], *imported.lines]
        fields["items"] = imported.items or fields["items"]
    return services.check_batch_request(**fields, user_id=request.user.pk), priority


class BatchDetailView(APIView):
    @extend_schema(parameters=[IF_NONE_MATCH], responses={200: BatchSerializer, 304: NOT_MODIFIED})
    def get(self, request: Request, batch_id: uuid.UUID) -> Response:
        batch = selectors.batch_get(user=request.user, batch_id=batch_id)
        etag = etags.finished_batch_etag(batch, _variant(request))
        return conditional(request, etag, lambda: Response(BatchSerializer(batch, context={"request": request}).data))

    @extend_schema(
        responses={204: None},
        description="Delete an ended batch, its images and their files (409 `batch_active` while it runs: cancel "
        "it first). What it cost stays in your usage and quota.",
    )
    def delete(self, request: Request, batch_id: uuid.UUID) -> Response:
        library.batch_delete(batch=selectors.batch_get(user=request.user, batch_id=batch_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class BatchCancelView(APIView):
    @extend_schema(request=None, responses=BatchSerializer)
    def post(self, request: Request, batch_id: uuid.UUID) -> Response:
        batch = services.batch_cancel(batch=selectors.batch_get(user=request.user, batch_id=batch_id))
        return Response(BatchSerializer(batch, context={"request": request}).data)


class BatchPauseView(APIView):
    @extend_schema(request=None, responses=BatchSerializer, description="No new image starts; running ones finish.")
    def post(self, request: Request, batch_id: uuid.UUID) -> Response:
        batch = services.batch_pause(batch=selectors.batch_get(user=request.user, batch_id=batch_id))
        return Response(BatchSerializer(batch, context={"request": request}).data)


class BatchResumeView(APIView):
    @extend_schema(request=None, responses=BatchSerializer)
    def post(self, request: Request, batch_id: uuid.UUID) -> Response:
        batch = services.batch_resume(batch=selectors.batch_get(user=request.user, batch_id=batch_id))
        return Response(BatchSerializer(batch, context={"request": request}).data)


class BatchRetryView(APIView):
    @extend_schema(
        request=BatchRetrySerializer,
        responses=BatchSerializer,
        description="Queue the failed and cancelled images of a finished batch again; images that failed for "
        "good (content filtered, invalid request) only with `include_permanent`.",
    )
    def post(self, request: Request, batch_id: uuid.UUID) -> Response:
        data = BatchRetrySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        batch = selectors.batch_get(user=request.user, batch_id=batch_id)
        batch = services.batch_retry_failed(batch=batch, include_permanent=data.validated_data["include_permanent"])
        return Response(BatchSerializer(batch, context={"request": request}).data)


class GenerationRetryView(APIView):
    @extend_schema(request=None, responses=GenerationSerializer, description="Render one failed image again.")
    def post(self, request: Request, generation_id: uuid.UUID) -> Response:
        generation = selectors.generation_get(user=request.user, generation_id=generation_id)
        services.generation_retry(generation=generation)
        generation = selectors.generation_get(user=request.user, generation_id=generation_id)
        return Response(GenerationSerializer(generation, context={"request": request}).data)


class BatchGenerationsView(GenericAPIView):
    serializer_class = GenerationSerializer
    pagination_class = None

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, description="Only generations in this status."),
            OpenApiParameter("page", int, description="Without a cursor: the n-th page of `page_size` images."),
            *PAGING,
            IF_NONE_MATCH,
        ],
        responses={200: keyset_page_schema("GenerationPage", GenerationSerializer), 304: NOT_MODIFIED},
        operation_id="v1_batches_generations_list",
    )
    def get(self, request: Request, batch_id: uuid.UUID) -> Response:
        """A finished batch's page is named by its keys first, then read whole only if no copy is current."""
        batch = selectors.batch_get(user=request.user, batch_id=batch_id)
        arguments = {
            "batch": batch,
            "status": query_param(request, "status"),
            "cursor": query_param(request, "cursor"),
            "size": page_size_from(query_param(request, "page_size")),
            "page_number": page_number_from(query_param(request, "page")),
        }
        page = lambda: first_page_if_stale(selectors.batch_generation_page, **arguments)  # noqa: E731
        etag = None  # an active batch's page has no tag: it is read whole every time
        if not batch.is_active:
            named = first_page_if_stale(selectors.batch_generation_keys, fields=etags.PAGE_KEY_FIELDS, **arguments)
            etag = etags.batch_generations_etag(batch, named.items, named.next_cursor, _variant(request))
        respond = lambda: keyset_response(request, page(), GenerationSerializer)  # noqa: E731
        return conditional(request, etag, respond, keep_seconds=settings.FINISHED_PAGE_CACHE_SECONDS)


class LibraryView(GenericAPIView):
    """Every image of mine across batches, newest first, with full-text search on prompts."""

    serializer_class = GenerationSerializer
    pagination_class = None

    @extend_schema(
        operation_id="v1_generations_list",
        parameters=[*LIBRARY_FILTERS, IF_NONE_MATCH],
        responses={200: keyset_page_schema("LibraryPage", GenerationSerializer), 304: NOT_MODIFIED},
    )
    def get(self, request: Request) -> Response:
        page = read_page(
            request, selectors.library_page, user=request.user, filters=selectors.library_filters(request.query_params)
        )
        etag = etags.generation_page_etag(request.user.pk, page.items, page.next_cursor, _variant(request))
        return conditional(request, etag, lambda: keyset_response(request, page, GenerationSerializer))


class GenerationDetailView(APIView):
    @extend_schema(responses=GenerationDetailSerializer)
    def get(self, request: Request, generation_id: uuid.UUID) -> Response:
        generation = selectors.generation_get(user=request.user, generation_id=generation_id)
        return Response(GenerationDetailSerializer(generation, context={"request": request}).data)

    @extend_schema(
        responses={204: None},
        description="Delete a finished image and its files (409 `generation_unfinished` while it is being made). "
        "Its batch still counts it in `total`; usage and quota are unchanged.",
    )
    def delete(self, request: Request, generation_id: uuid.UUID) -> Response:
        generation = selectors.generation_get(user=request.user, generation_id=generation_id)
        library.generations_delete(generations=[generation])
        return Response(status=status.HTTP_204_NO_CONTENT)


class GenerationFileView(APIView):
    field = "image"

    @extend_schema(responses={(200, "image/png"): bytes})
    def get(self, request: Request, generation_id: uuid.UUID) -> HttpResponseBase:
        generation = selectors.generation_get(user=request.user, generation_id=generation_id)
        return serve_generation_file(generation, self.field, download=request.query_params.get("download") == "1")


class ProviderListView(APIView):
    @extend_schema(responses=ProviderSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(user_provider_data(request.user.pk))


class UsageView(APIView):
    @extend_schema(responses=UsageSerializer)
    def get(self, request: Request) -> Response:
        return Response(UsageSerializer(selectors.usage_summary(user=request.user)).data)


class ProviderKeyListCreateView(APIView):
    @extend_schema(responses=ProviderKeySerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(ProviderKeySerializer(keys.provider_key_list(user=request.user), many=True).data)

    @extend_schema(request=ProviderKeyCreateSerializer, responses={201: ProviderKeySerializer})
    def post(self, request: Request) -> Response:
        data = ProviderKeyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key = keys.provider_key_save(owner=cast(User, request.user), request=request, **data.validated_data)
        return Response(ProviderKeySerializer(key).data, status=status.HTTP_201_CREATED)


class ProviderKeyDetailView(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request: Request, provider: str) -> Response:
        keys.provider_key_delete(owner=cast(User, request.user), provider=provider, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)
