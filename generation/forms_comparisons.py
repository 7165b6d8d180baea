"""The portal's new-comparison form: prompts, an optional seed and 2–4 configurations."""

from __future__ import annotations

import json
from typing import Any, cast

from django import forms
from django.utils.translation import gettext_lazy as _

from generation.comparisons import MAX_ARMS, MIN_ARMS, ArmRequest
from generation.forms import model_choices, size_choices
from generation.prompts import split_lines
from generation.services import MAX_SEED

# Which arm field shows an error the service reports against an API field.
ARM_FIELD_FOR_ERROR = {"provider": "model", "model": "model", "size": "size", "width": "size", "height": "size"}


class ComparisonForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200, required=False)
    prompts = forms.CharField(
        label=_("Prompts"),
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        help_text=_("One prompt per line; every configuration renders each of them."),
    )
    seed = forms.IntegerField(
        label=_("Seed"),
        required=False,
        min_value=0,
        max_value=MAX_SEED,
        help_text=_("Empty: each prompt gets its own random seed, the same for every configuration."),
    )

    def __init__(self, *args: Any, user_id: int | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.user_id = user_id
        models = model_choices(user_id)
        sizes = [("", _("Model default")), *size_choices(user_id)]
        for index in range(MAX_ARMS):
            required = index < MIN_ARMS
            choices = models if required else [("", _("— not used —")), *models]
            self.fields[f"arm{index}_model"] = forms.ChoiceField(
                label=_("Provider and model"), choices=choices, required=required
            )
            self.fields[f"arm{index}_size"] = forms.ChoiceField(label=_("Size"), choices=sizes, required=False)
            self.fields[f"arm{index}_label"] = forms.CharField(
                label=_("Label"), max_length=100, required=False, help_text=_("Empty: provider, model and size.")
            )
            self.fields[f"arm{index}_options"] = forms.CharField(
                label=_("Model settings (JSON)"),
                required=False,
                widget=forms.TextInput(attrs={"placeholder": '{"quality": "hd"}', "spellcheck": "false"}),
            )
        if not self.is_bound and len(models) > 0:
            self.initial.setdefault("arm0_model", models[0][0])
            self.initial.setdefault("arm1_model", models[0][0])

    def arm_fields(self) -> list[dict[str, Any]]:
        """The arm inputs grouped for the template: index, fields and whether the arm is in use."""
        groups = []
        for index in range(MAX_ARMS):
            bound = {name: self[f"arm{index}_{name}"] for name in ("model", "size", "label", "options")}
            used = index < MIN_ARMS or bool(bound["model"].value())
            groups.append({"index": index, "number": index + 1, "optional": index >= MIN_ARMS, "used": used, **bound})
        return groups

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for index in range(MAX_ARMS):
            raw = (data.get(f"arm{index}_options") or "").strip()
            try:
                options = json.loads(raw) if raw else {}
            except ValueError:
                options = None
            if not isinstance(options, dict):
                self.add_error(f"arm{index}_options", _('Write the settings as a JSON object, e.g. {"quality": "hd"}.'))
            data[f"arm{index}_options"] = options or {}
        return data

    def comparison_request(self) -> dict[str, Any]:
        """The form's data in the keyword form that comparisons.check_comparison_request takes."""
        data = self.cleaned_data
        arms = []
        for index in range(MAX_ARMS):
            choice = data.get(f"arm{index}_model")
            if not choice:
                continue
            provider, _sep, model = choice.partition(":")
            width, _x, height = (data.get(f"arm{index}_size") or "").partition("x")
            arms.append(
                ArmRequest(
                    provider=provider,
                    model=model,
                    width=int(width) if width else None,
                    height=int(height) if height else None,
                    options=cast(dict[str, Any], data[f"arm{index}_options"]),
                    label=data.get(f"arm{index}_label") or "",
                )
            )
        return {
            "name": data["name"],
            "prompts": split_lines(data["prompts"]),
            "seed": data["seed"],
            "arms": arms,
            "user_id": self.user_id,
        }

    def used_arm_numbers(self) -> list[int]:
        """The form index of each arm sent to the service, in order (an error's `arm` is a position in this)."""
        return [index for index in range(MAX_ARMS) if self.cleaned_data.get(f"arm{index}_model")]
