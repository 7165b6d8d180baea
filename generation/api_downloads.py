"""Download endpoints: a batch, or a selection of images, as one streamed ZIP with manifests."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from generation import library, selectors
from generation.archive import archive_response, download_status, selection_filename
from generation.models import GenerationStatus
from generation.serializers import SelectionDownloadSerializer

ZIP_RESPONSE = {
    (200, "application/zip"): OpenApiResponse(
        OpenApiTypes.BINARY, description="images/… plus manifest.csv and manifest.json, streamed."
    )
}


class ZipOrJsonErrors(DefaultContentNegotiation):
    """A download answers a ZIP whatever the client accepts (no 406 for `Accept: application/zip`);
    DRF renders only the errors, and those are always the JSON error body."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class BatchDownloadView(APIView):
    renderer_classes = [JSONRenderer]
    content_negotiation_class = ZipOrJsonErrors

    @extend_schema(
        operation_id="v1_batches_download",
        parameters=[OpenApiParameter("status", str, enum=GenerationStatus.values, description="Only these images.")],
        responses=ZIP_RESPONSE,
        description="The batch as a ZIP: its images and manifest.csv / manifest.json (file, prompt, negative "
        "prompt, seed, size, provider, model, status, cost); images without a file are listed with an empty "
        "`file`. One request, however many images.",
    )
    def get(self, request: Request, batch_id: uuid.UUID) -> StreamingHttpResponse:
        batch = selectors.batch_get(user=request.user, batch_id=batch_id)
        status = download_status(str(request.query_params.get("status", "")).strip())
        return archive_response(selectors.generation_list(batch=batch, status=status), f"{batch.name}.zip")


class CollectionDownloadView(APIView):
    renderer_classes = [JSONRenderer]
    content_negotiation_class = ZipOrJsonErrors

    @extend_schema(
        operation_id="v1_collections_download",
        responses=ZIP_RESPONSE,
        description="The collection's images as one ZIP with manifest.csv / manifest.json, in the order they "
        "were added.",
    )
    def get(self, request: Request, collection_id: uuid.UUID) -> StreamingHttpResponse:
        collection = library.collection_get(user=request.user, collection_id=collection_id)
        return archive_response(library.collection_generations(collection=collection), f"{collection.name}.zip")


class SelectionDownloadView(APIView):
    renderer_classes = [JSONRenderer]
    content_negotiation_class = ZipOrJsonErrors

    @extend_schema(
        operation_id="v1_generations_download",
        request=SelectionDownloadSerializer,
        responses=ZIP_RESPONSE,
        description="Your images with these ids (at most 1000) as one ZIP with manifests. An id that is not "
        "yours is a 404 for the whole request.",
    )
    def post(self, request: Request) -> StreamingHttpResponse:
        data = SelectionDownloadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ids = [str(value) for value in data.validated_data["ids"]]
        return archive_response(selectors.download_selection(user=request.user, ids=ids), selection_filename())
