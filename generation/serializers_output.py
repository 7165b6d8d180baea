"""The documented shape of a batch's `output` settings (checked by generation.output.check_output)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from generation.output import FITS, FORMATS, METADATA_CHOICES, POSITIONS

OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "nullable": True,
    "description": "Post-processing of each image; the original PNG is always kept. Omit (or null) for none.",
    "properties": {
        "format": {"type": "string", "enum": list(FORMATS), "default": "png"},
        "quality": {
            "type": "integer",
            "minimum": 1,
            "maximum": 100,
            "nullable": True,
            "description": "jpeg, webp and avif only; default 90 (avif 75).",
        },
        "resize": {
            "type": "object",
            "nullable": True,
            "properties": {
                "width": {"type": "integer", "minimum": 16, "maximum": 4096},
                "height": {"type": "integer", "minimum": 16, "maximum": 4096},
                "fit": {"type": "string", "enum": list(FITS), "default": "contain"},
            },
            "required": ["width", "height"],
        },
        "resample_scale": {
            "type": "number",
            "minimum": 1,
            "maximum": 4,
            "default": 1,
            "description": "Lanczos resampling by this factor after the resize (not AI upscaling).",
        },
        "watermark": {
            "type": "object",
            "nullable": True,
            "properties": {
                "text": {"type": "string", "minLength": 1, "maxLength": 200},
                "position": {"type": "string", "enum": list(POSITIONS), "default": "bottom-right"},
                "opacity": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.5},
            },
            "required": ["text"],
        },
        "metadata": {"type": "string", "enum": list(METADATA_CHOICES), "default": "embed"},
    },
}


@extend_schema_field(OUTPUT_SCHEMA)
class OutputField(serializers.JSONField):
    """Shape checked by generation.output.check_output, which names the field that is wrong."""
