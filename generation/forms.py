"""Portal forms for generation: the new-batch form, offering only configured providers."""

from __future__ import annotations

import json
from typing import Any, cast

from django import forms
from django.conf import settings
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from generation.imports import ImportedPrompts, check_items, import_file, prompts_and_items_message
from generation.models import BatchPriority
from generation.parameters import PromptItem
from generation.prompts import split_lines
from generation.providers import configured_providers
from imagegen.errors import ValidationFailed

OPTION_PREFIX = "option_"


def model_choices(user_id: int | None = None) -> list[tuple[str, str]]:
    return [
        (f"{provider.name}:{model.id}", f"{gettext(provider.label)} — {gettext(model.label)}")
        for provider in configured_providers(user_id=user_id).values()
        for model in provider.models()
    ]


def size_choices(user_id: int | None = None) -> list[tuple[str, str]]:
    sizes: dict[str, None] = {}
    for provider in configured_providers(user_id=user_id).values():
        for model in provider.models():
            sizes.update({f"{w}x{h}": None for w, h in model.sizes})
    return [(size, size.replace("x", " × ")) for size in sizes]


class BatchForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200, required=False)
    model = forms.ChoiceField(label=_("Provider and model"))
    prompts = forms.CharField(
        label=_("Prompts"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false"}),
        help_text=_("One prompt per line."),
    )
    prompts_file = forms.FileField(
        label=_("…or import a file"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": ".txt,.csv,.json,.jsonl,.ndjson"}),
        help_text=_(
            "UTF-8, up to 2 MB: .txt (one prompt per line), .csv (a header row with a “prompt” column; "
            "negative_prompt, seed, width, height and images are optional; other columns fill {column} in "
            "the prompt), .json (a list of such objects) or .jsonl (one object per line)."
        ),
    )
    # Rows of an earlier imported batch, carried over by "Use these settings" (JSON, checked again).
    items_json = forms.CharField(required=False, widget=forms.HiddenInput)
    template = forms.BooleanField(
        label=_("Expand templates"),
        required=False,
        help_text=_("{red|blue} {cat|dog} becomes four prompts: every combination of the alternatives."),
    )
    negative_prompt = forms.CharField(label=_("Negative prompt"), required=False, max_length=4000)
    size = forms.ChoiceField(label=_("Size"))
    images_per_prompt = forms.IntegerField(
        label=_("Images per prompt"), min_value=1, max_value=settings.MAX_IMAGES_PER_PROMPT, initial=1
    )
    seed = forms.IntegerField(
        label=_("Seed"), required=False, min_value=0, max_value=2**32 - 1, help_text=_("Empty for random seeds.")
    )

    cache = forms.BooleanField(
        label=_("Reuse identical images"),
        required=False,
        initial=True,
        help_text=_("With a fixed seed, an image you already made with the same settings is copied, free of charge."),
    )
    # A one-time token: a second POST of this form (double click, reload) goes to the batch already made.
    submit_token = forms.CharField(widget=forms.HiddenInput, required=False, max_length=64)

    priority = forms.TypedChoiceField(
        label=_("Priority"),
        coerce=int,
        required=False,
        initial=BatchPriority.NORMAL,
        help_text=_("Orders your own batches; everyone shares the workers fairly whatever the priority."),
    )

    fallbacks = forms.MultipleChoiceField(
        label=_("Fallback providers"),
        required=False,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "fallback-choice"}),
        help_text=_("Tried in this order when the chosen model keeps failing with temporary errors."),
    )

    # Webhooks (generation/webhooks.py): called with the signed summary when the batch ends.
    webhook_url = forms.CharField(
        label=_("Webhook URL"),
        required=False,
        max_length=2000,
        widget=forms.URLInput(attrs={"placeholder": "https://", "inputmode": "url"}),
        help_text=_("Optional. When the batch ends, a signed POST with its summary is sent here (https only)."),
    )

    def __init__(self, *args: Any, user_id: int | None = None, high_priority: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")  # labels sit above their inputs, as on every other form
        super().__init__(*args, **kwargs)
        priorities = [(value, label) for value, label in BatchPriority.choices]
        if not high_priority:
            priorities = [(value, label) for value, label in priorities if value != BatchPriority.HIGH]
        cast(forms.TypedChoiceField, self.fields["priority"]).choices = priorities
        choices = model_choices(user_id)
        cast(forms.ChoiceField, self.fields["model"]).choices = choices
        cast(forms.MultipleChoiceField, self.fields["fallbacks"]).choices = choices
        cast(forms.ChoiceField, self.fields["size"]).choices = size_choices(user_id)
        self.fields["size"].initial = "512x512"
        self.user_id = user_id

    def clean_priority(self) -> int:
        value = self.cleaned_data.get("priority")
        return BatchPriority.NORMAL if value in (None, "") else int(value)

    def clean_prompts_file(self) -> ImportedPrompts | None:
        upload = self.cleaned_data.get("prompts_file")
        if not upload:
            return None
        if upload.size > settings.MAX_UPLOAD_BYTES:
            raise forms.ValidationError(_("The file is larger than 2 MB."))
        try:
            return import_file(upload.read(), filename=upload.name or "")
        except ValidationFailed as error:
            raise forms.ValidationError(_row_errors(error)) from None

    def clean_items_json(self) -> list[PromptItem]:
        raw = self.cleaned_data.get("items_json") or ""
        if not raw:
            return []
        try:
            return check_items(json.loads(raw))
        except (ValueError, ValidationFailed):
            raise forms.ValidationError(_("The imported rows could not be read; import the file again.")) from None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        imported = data.get("prompts_file")
        lines = split_lines(data.get("prompts", "")) + (imported.lines if imported else [])
        items = (imported.items if imported else []) or data.get("items_json") or []
        if items and split_lines(data.get("prompts", "")):
            self.add_error("prompts_file", prompts_and_items_message())
        if not lines and not items and not {"prompts_file", "items_json"} & set(self.errors):
            self.add_error("prompts", _("Enter at least one prompt, or upload a file of prompts."))
        data["prompt_lines"] = [] if items else lines
        data["items"] = items
        return data

    def batch_request(self) -> dict[str, Any]:
        """The form's data in the keyword form that services.check_batch_request takes."""
        data = self.cleaned_data
        provider, _sep, model = data["model"].partition(":")
        width, _x, height = data["size"].partition("x")
        return {
            "name": data["name"],
            "provider": provider,
            "model": model,
            "prompts": data["prompt_lines"],
            "template": data["template"],
            "negative_prompt": data["negative_prompt"],
            "images_per_prompt": data["images_per_prompt"],
            "width": int(width),
            "height": int(height),
            "seed": data["seed"],
            "options": self.model_options(),
            "fallbacks": list(data.get("fallbacks") or []),
            "items": data["items"] or None,
            "cache": bool(data.get("cache")),
            "user_id": self.user_id,
            "webhook_url": data.get("webhook_url") or "",
        }

    def model_options(self) -> dict[str, str]:
        """The model's own settings, posted as `option_<name>` inputs that the page builds per model."""
        return {
            name.removeprefix(OPTION_PREFIX): value.strip()
            for name, value in self.data.items()
            if name.startswith(OPTION_PREFIX) and isinstance(value, str) and value.strip()
        }

    # Which form field shows an error a service reports against an API field.
    FIELD_FOR_ERROR = {
        "provider": "model",
        "width": "size",
        "height": "size",
        "options": None,
        "rows": "prompts_file",
        "items": "prompts_file",
    }


def _row_errors(error: ValidationFailed) -> list[str]:
    """An import refusal as one message per problem row (the first few), for the form's field."""
    rows = error.details.get("rows") or []
    listed = [
        gettext("Row %(row)d, %(field)s: %(message)s") % row if row.get("row") and row.get("field") else row["message"]
        for row in rows[:5]
        if isinstance(row, dict)
    ]
    return [error.message, *listed[1:]] if listed else [error.message]


class ProviderKeyForm(forms.Form):
    provider = forms.ChoiceField(label=_("Provider"))
    api_key = forms.CharField(
        label=_("API key"),
        max_length=500,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        help_text=_("Stored encrypted; only its last four characters are shown again."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from generation.keys import key_providers

        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["provider"]).choices = list(key_providers().items())
