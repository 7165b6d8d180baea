"""Serializer fields that take JSON types as the schema states them (form posts stay lenient).

DRF turns 0 into "0" for a CharField and "5" into 5 for an IntegerField. In a form post every
value is text, so that is needed there; in a JSON body a number where the schema says string
is a client's mistake and is refused, so the API does what its OpenAPI document says.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from imagegen.parsers import JSONBody


def _from_json(field: serializers.Field) -> bool:
    root = field.root
    return isinstance(getattr(root, "initial_data", None), JSONBody)


class CharField(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        if _from_json(self) and not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class IntegerField(serializers.IntegerField):
    def to_internal_value(self, data: Any) -> int:
        if _from_json(self) and (isinstance(data, bool) or not isinstance(data, int)):
            self.fail("invalid")
        return super().to_internal_value(data)


class BooleanField(serializers.BooleanField):
    def to_internal_value(self, data: Any) -> bool:
        if _from_json(self) and not isinstance(data, bool):
            self.fail("invalid", input=data)
        return super().to_internal_value(data)
