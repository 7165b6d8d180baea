"""Output rows of list endpoints without DRF's per-response field building: a read plan per class.

DRF builds every field of a ModelSerializer again for each response (model introspection and deep
copies) and walks each row through generic attribute lookups; for a page of 100 images that was
most of the request's CPU. `CompiledRepresentation` works out once per serializer class how each
output field reads its value, and keeps each field's own `to_representation` for the conversion, so
the output is DRF's, byte for byte (tests/imagegen/test_representation.py compares both for every
serializer that uses it). Fields whose conversion may depend on the request (files, relations,
nested serializers, custom fields) make the class fall back to DRF's path entirely.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from rest_framework import ISO_8601, serializers
from rest_framework.fields import is_simple_callable
from rest_framework.settings import api_settings

# Fields whose to_representation reads only the value and the field's own options.
_PURE_FIELDS: tuple[type[serializers.Field], ...] = (
    serializers.CharField,
    serializers.IntegerField,
    serializers.BigIntegerField,
    serializers.FloatField,
    serializers.BooleanField,
    serializers.UUIDField,
    serializers.DateTimeField,
    serializers.DateField,
    serializers.DecimalField,
    serializers.JSONField,
    serializers.ChoiceField,
    serializers.ReadOnlyField,
)
_PURE_CONVERSIONS = {cls.to_representation for cls in _PURE_FIELDS}


@dataclass(frozen=True)
class _Reader:
    name: str
    method: str = ""
    source: tuple[str, ...] = ()
    column: str = ""  # a model column read straight from the instance (never callable)
    convert: Callable[[Any], Any] | None = None
    iso_datetime: bool = False  # DRF's default ISO 8601 output of an aware datetime, in the current zone


_plans: dict[type, tuple[_Reader, ...] | None] = {}


def _reader(name: str, field: serializers.Field, columns: set[str]) -> _Reader | None:
    if isinstance(field, serializers.SerializerMethodField):
        return _Reader(name, method=field.method_name)
    if type(field).to_representation not in _PURE_CONVERSIONS or field.source == "*":
        return None
    if field.source in columns:
        plain_iso = type(field) is serializers.DateTimeField and _iso_in_current_zone(field)
        return _Reader(name, column=field.source, convert=field.to_representation, iso_datetime=plain_iso)
    return _Reader(name, source=tuple(field.source_attrs), convert=field.to_representation)


def _iso_in_current_zone(field: serializers.DateTimeField) -> bool:
    output_format = getattr(field, "format", api_settings.DATETIME_FORMAT)
    iso = bool(output_format) and output_format.lower() == ISO_8601
    return settings.USE_TZ and iso and not hasattr(field, "timezone")


def _iso(value: Any, zone: Any) -> Any:
    """DateTimeField.to_representation for an aware datetime and the ISO format, without its per-call lookups."""
    if not isinstance(value, datetime) or timezone.is_naive(value):
        return None
    text = value.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _columns(serializer_class: type[serializers.Serializer]) -> set[str]:
    model = getattr(getattr(serializer_class, "Meta", None), "model", None)
    return {f.attname for f in model._meta.concrete_fields} if model else set()


def read_plan(serializer_class: type[serializers.Serializer]) -> tuple[_Reader, ...] | None:
    """How each readable field of the class reads its value, or None when one of them cannot be compiled."""
    if serializer_class not in _plans:
        prototype = serializer_class()
        columns = _columns(serializer_class)
        readers = [_reader(name, f, columns) for name, f in prototype.fields.items() if not f.write_only]
        _plans[serializer_class] = None if None in readers else tuple(r for r in readers if r is not None)
    return _plans[serializer_class]


def _value(instance: Any, source: tuple[str, ...]) -> Any:
    for attr in source:
        instance = getattr(instance, attr)
        if instance is None:
            return None
        if is_simple_callable(instance):
            instance = instance()
    return instance


class CompiledRepresentation(serializers.Serializer):
    """Mixin for read-only ModelSerializers whose rows are model instances (list pages, details)."""

    def to_representation(self, instance: Any) -> dict[str, Any]:
        plan = read_plan(type(self))
        if plan is None or isinstance(instance, Mapping) or not isinstance(instance, models.Model):
            return super().to_representation(instance)
        row: dict[str, Any] = {}
        zone = self._zone()
        for reader in plan:
            if reader.method:
                row[reader.name] = getattr(self, reader.method)(instance)
                continue
            value = getattr(instance, reader.column) if reader.column else _value(instance, reader.source)
            if value is None or reader.convert is None:
                row[reader.name] = None
            elif reader.iso_datetime:
                row[reader.name] = _iso(value, zone) or reader.convert(value)
            else:
                row[reader.name] = reader.convert(value)
        return row

    def _zone(self) -> Any:
        """The current time zone, looked up once per serializer (a list's rows share their child)."""
        zone = self.__dict__.get("_current_zone")
        if zone is None:
            zone = self.__dict__["_current_zone"] = timezone.get_current_timezone()
        return zone
