"""The compiled read plan gives exactly DRF's output, for every serializer that uses it."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone
from rest_framework import serializers
from rest_framework.test import APIRequestFactory

import generation.serializers  # defines the serializers that use the plan
from generation.models import Batch, Generation
from imagegen.representation import CompiledRepresentation, read_plan


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def _drf(serializer: Any, instance: Any) -> dict[str, Any]:
    return dict(serializers.Serializer.to_representation(serializer, instance))


def _instances(make_batch: Any) -> list[Any]:
    batch = make_batch(prompts=["a red fox", "一隻藍色的貓"], images_per_prompt=2)
    failed = Generation.objects.filter(batch=batch).order_by("position").last()
    assert failed is not None
    Generation.objects.filter(pk=failed.pk).update(
        status="failed", error_code="content_filtered", error_message="no", image="", cost_usd=None
    )
    Batch.objects.filter(pk=batch.pk).update(paused_at=timezone.now(), started_at=None)
    return [*Batch.objects.all(), *Generation.objects.all()]


@pytest.mark.django_db
@pytest.mark.parametrize("zone", ["Asia/Taipei", "UTC"])
def test_every_compiled_serializer_gives_drfs_output(make_batch: Any, zone: str) -> None:
    timezone.activate(zone)
    request = APIRequestFactory().get("/api/v1/batches/")
    instances = _instances(make_batch)
    checked = 0
    for serializer_class in [c for c in _subclasses(CompiledRepresentation) if not c.__module__.startswith("tests")]:
        model = serializer_class.Meta.model
        assert read_plan(serializer_class) is not None, f"{serializer_class.__name__} falls back to DRF"
        for instance in [i for i in instances if isinstance(i, model)]:
            serializer = serializer_class(instance, context={"request": request})
            assert serializer.data == _drf(serializer_class(instance, context={"request": request}), instance)
            checked += 1
    timezone.deactivate()
    assert checked >= 5


@pytest.mark.django_db
def test_a_list_page_is_the_same_through_the_list_serializer(make_batch: Any) -> None:
    request = APIRequestFactory().get("/api/v1/generations/")
    rows = list(Generation.objects.filter(batch=make_batch()).order_by("position"))
    serializer = generation.serializers.GenerationSerializer
    compiled = serializer(rows, many=True, context={"request": request}).data
    generic = [_drf(serializer(row, context={"request": request}), row) for row in rows]
    assert [dict(row) for row in compiled] == generic


def test_a_field_whose_output_may_need_the_request_makes_the_class_fall_back() -> None:
    class WithFile(CompiledRepresentation, serializers.ModelSerializer):
        class Meta:
            model = Generation
            fields = ["id", "image"]

    assert read_plan(WithFile) is None
