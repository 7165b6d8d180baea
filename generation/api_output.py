"""Post-processing endpoints: renditions listed on an image, their files, and re-processing a batch."""

from __future__ import annotations

import uuid
from typing import Any, cast

from django.http.response import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from generation import reprocess, selectors
from generation.models import Generation, OutputJob, Rendition
from generation.output import CONTENT_TYPES, FORMATS
from generation.renditions import output_job_progress, rendition_get
from generation.serializers import GenerationSerializer, object_url
from generation.serializers_output import OutputField
from generation.views import serve_stored_file


class ReprocessSerializer(serializers.Serializer):
    output = OutputField()


class RenditionSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="Download URL of this file.")

    class Meta:
        model = Rendition
        fields = ["id", "format", "width", "height", "bytes", "settings", "url", "created_at"]
        read_only_fields = fields

    def get_url(self, rendition: Rendition) -> str:
        return object_url(self.context, "api-rendition-file", rendition.pk)


class GenerationDetailSerializer(GenerationSerializer):
    renditions = serializers.SerializerMethodField(help_text="Files derived by post-processing, oldest first.")

    class Meta(GenerationSerializer.Meta):
        fields = [*GenerationSerializer.Meta.fields, "renditions"]
        read_only_fields = fields

    @extend_schema_field(RenditionSerializer(many=True))
    def get_renditions(self, generation: Generation) -> list[dict[str, Any]]:
        return list(RenditionSerializer(generation.renditions.all(), many=True, context=self.context).data)


class OutputJobSerializer(serializers.ModelSerializer):
    batch_id = serializers.UUIDField(read_only=True)
    output = serializers.JSONField(source="settings", read_only=True)
    done = serializers.SerializerMethodField()
    failed = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField()

    class Meta:
        model = OutputJob
        fields = ["id", "batch_id", "output", "total", "done", "failed", "status", "created_at"]
        read_only_fields = fields

    def _progress(self, job: OutputJob) -> dict[str, Any]:
        cache = cast(dict[str, Any], self.context).setdefault("_progress", {})
        if job.pk not in cache:
            cache[job.pk] = output_job_progress(job)
        return dict(cache[job.pk])

    def get_done(self, job: OutputJob) -> int:
        return int(self._progress(job)["done"])

    def get_failed(self, job: OutputJob) -> int:
        return int(self._progress(job)["failed"])

    @extend_schema_field(serializers.ChoiceField(choices=["running", "finished"]))
    def get_status(self, job: OutputJob) -> str:
        return str(self._progress(job)["status"])


class BatchReprocessView(APIView):
    @extend_schema(responses=OutputJobSerializer(many=True), description="Re-processing jobs of this batch.")
    def get(self, request: Request, batch_id: uuid.UUID) -> Response:
        batch = selectors.batch_get(user=request.user, batch_id=batch_id)
        return Response(OutputJobSerializer(batch.output_jobs.all(), many=True).data)

    @extend_schema(
        request=ReprocessSerializer,
        responses={
            202: OutputJobSerializer,
            409: OpenApiResponse(
                OpenApiTypes.OBJECT, description="No image of the batch has succeeded yet (`nothing_to_reprocess`)."
            ),
        },
        description="Derive new files from the batch's succeeded images with other output settings; the "
        "provider is not called again. The work is queued; follow it with GET on this URL.",
    )
    def post(self, request: Request, batch_id: uuid.UUID) -> Response:
        batch = selectors.batch_get(user=request.user, batch_id=batch_id)
        data = ReprocessSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = reprocess.batch_reprocess(batch=batch, output=data.validated_data["output"])
        return Response(OutputJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class RenditionFileView(APIView):
    @extend_schema(
        responses={(200, CONTENT_TYPES[name]): OpenApiTypes.BINARY for name in FORMATS},
        description="The rendition's file; `?download=1` for an attachment.",
    )
    def get(self, request: Request, rendition_id: uuid.UUID) -> HttpResponseBase:
        rendition = rendition_get(user=request.user, rendition_id=rendition_id)
        generation = rendition.generation
        name = str(rendition.file.name)
        filename = f"{generation.batch.name[:40]}-{generation.position + 1}-{rendition.width}x{rendition.height}"
        filename += name[name.rfind(".") :]
        return serve_stored_file(name, filename=filename, download=request.query_params.get("download") == "1")
