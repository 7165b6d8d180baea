"""The portal's "Output" fieldset: post-processing settings for a new batch or a re-processing job."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from generation.output import FORMATS, MAX_WATERMARK_LENGTH, OutputSettings

FORMAT_LABELS = {"png": "PNG", "jpeg": "JPEG", "webp": "WebP", "avif": "AVIF"}
FIT_CHOICES = [
    ("contain", _("Contain: the whole image inside the box")),
    ("cover", _("Cover: fill the box, cropping the edges")),
    ("exact", _("Exact: stretch to the box")),
]
POSITION_CHOICES = [
    ("bottom-right", _("Bottom right")),
    ("bottom-left", _("Bottom left")),
    ("top-right", _("Top right")),
    ("top-left", _("Top left")),
    ("center", _("Centre")),
]
METADATA_CHOICES = [
    ("embed", _("Embed prompt, seed, model and provider")),
    ("strip", _("Strip all metadata")),
]


class OutputForm(forms.Form):
    """Posted with the prefix `output`; generation.output.check_output validates what it builds."""

    # Nothing is required: a form posted without these inputs (an older page, a script) asks for no output.
    format = forms.ChoiceField(
        label=_("Format"), choices=[(f, FORMAT_LABELS[f]) for f in FORMATS], initial="png", required=False
    )
    quality = forms.IntegerField(
        label=_("Quality"), required=False, min_value=1, max_value=100, help_text=_("1–100, JPEG, WebP and AVIF only.")
    )
    resize_width = forms.IntegerField(label=_("Resize to width"), required=False, min_value=16, max_value=4096)
    resize_height = forms.IntegerField(label=_("Resize to height"), required=False, min_value=16, max_value=4096)
    resize_fit = forms.ChoiceField(label=_("Fit"), choices=FIT_CHOICES, initial="contain", required=False)
    resample_scale = forms.FloatField(
        label=_("Resample ×"),
        required=False,
        min_value=1,
        max_value=4,
        initial=1,
        help_text=_("Enlarges by this factor with Lanczos resampling; it adds no detail (not AI upscaling)."),
    )
    watermark_text = forms.CharField(label=_("Watermark text"), required=False, max_length=MAX_WATERMARK_LENGTH)
    watermark_position = forms.ChoiceField(label=_("Watermark position"), choices=POSITION_CHOICES, required=False)
    watermark_opacity = forms.FloatField(
        label=_("Watermark opacity"), required=False, min_value=0, max_value=1, initial=0.5
    )
    metadata = forms.ChoiceField(label=_("Metadata"), choices=METADATA_CHOICES, initial="embed", required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        kwargs.setdefault("prefix", "output")
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if (data.get("resize_width") is None) != (data.get("resize_height") is None):
            self.add_error("resize_width", _("Give both a width and a height to resize, or neither."))
        return data

    def output_request(self) -> dict[str, Any]:
        """The settings in the shape of the API's `output` object."""
        data = self.cleaned_data
        output: dict[str, Any] = {"format": data["format"] or "png", "metadata": data["metadata"] or "embed"}
        if data.get("quality") is not None:
            output["quality"] = data["quality"]
        if data.get("resize_width") is not None and data.get("resize_height") is not None:
            fit = data["resize_fit"] or "contain"
            output["resize"] = {"width": data["resize_width"], "height": data["resize_height"], "fit": fit}
        if data.get("resample_scale") is not None:
            output["resample_scale"] = data["resample_scale"]
        if data.get("watermark_text", "").strip():
            opacity = data.get("watermark_opacity")
            output["watermark"] = {
                "text": data["watermark_text"],
                "position": data["watermark_position"] or "bottom-right",
                "opacity": 0.5 if opacity is None else opacity,
            }
        return output

    @staticmethod
    def initial_from(settings: OutputSettings | None) -> dict[str, Any]:
        """The fieldset's values for stored settings (re-run: "use these settings"); none for no output."""
        if settings is None:
            return {}
        initial: dict[str, Any] = {
            "format": settings.format,
            "quality": settings.quality,
            "resample_scale": settings.resample_scale,
            "metadata": settings.metadata,
        }
        if settings.resize is not None:
            initial.update(
                resize_width=settings.resize.width, resize_height=settings.resize.height, resize_fit=settings.resize.fit
            )
        if settings.watermark is not None:
            initial.update(
                watermark_text=settings.watermark.text,
                watermark_position=settings.watermark.position,
                watermark_opacity=settings.watermark.opacity,
            )
        return initial

    def add_service_error(self, field: str, message: str) -> None:
        """Show an error the service reported as `output.<name>` on the matching input."""
        name = field.removeprefix("output").lstrip(".").replace(".", "_")
        name = {"resize": "resize_width", "watermark": "watermark_text"}.get(name, name)
        self.add_error(name if name in self.fields else None, message)
