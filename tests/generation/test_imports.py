"""Imports (generation/imports.py): CSV with a header, JSON, JSON Lines; a bad file is refused whole."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from generation.imports import import_file
from generation.models import Batch
from generation.parameters import PromptItem
from imagegen.errors import ValidationFailed
from tests.generation.test_views import form_data


def test_a_csv_header_is_not_a_prompt_and_other_columns_fill_placeholders() -> None:
    data = '\ufeffprompt,seed,width,height,images,animal\n"a {animal}, in oil",7,512,512,2,cat\nplain,,,,,\n'
    imported = import_file(data.encode(), filename="rows.csv")
    assert imported.items == [
        PromptItem(prompt="a cat, in oil", seed=7, width=512, height=512, images=2),
        PromptItem(prompt="plain"),
    ]


def test_json_and_json_lines_give_the_same_rows() -> None:
    rows = [{"prompt": "一隻貓", "negative_prompt": "blur"}, {"prompt": "b", "seed": 3}]
    as_json = import_file(json.dumps(rows).encode(), filename="rows.json")
    as_lines = import_file("\n".join(json.dumps(r) for r in rows).encode("utf-8-sig"), filename="rows.jsonl")
    assert as_json.items == as_lines.items == [PromptItem("一隻貓", negative_prompt="blur"), PromptItem("b", seed=3)]


def test_a_text_file_is_one_prompt_per_line() -> None:
    assert import_file(b"a\n\n b \n", filename="p.txt").lines == ["a", "b"]


def test_every_bad_row_is_named_and_nothing_is_imported() -> None:
    data = "prompt,seed,images\nok,1,1\n,2,1\nx,minus,99\n"
    with pytest.raises(ValidationFailed) as refused:
        import_file(data.encode(), filename="rows.csv")
    assert refused.value.code == "invalid_import"
    assert [(r["row"], r["field"]) for r in refused.value.details["rows"]] == [
        (3, "prompt"),
        (4, "seed"),
        (4, "images"),
    ]


@pytest.mark.parametrize(
    ("data", "filename"),
    [
        (b"text,seed\nx,1\n", "no-prompt-column.csv"),
        (b"\xff\xfe", "latin.csv"),
        (b"[{]", "broken.json"),
        (b'{"prompt": "a"}', "object.json"),
        (b"a", "image.png"),
    ],
)
def test_files_that_cannot_be_read_are_refused_in_the_one_error_shape(data: bytes, filename: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        import_file(data, filename=filename)
    assert refused.value.details["rows"] and {"row", "field", "message"} <= set(refused.value.details["rows"][0])


class TestPortalImports:
    """The New batch form reads the same files; a CSV header never becomes a (paid) prompt."""

    def test_a_csv_file_queues_its_rows_not_its_header(self, client: Any, owner: Any) -> None:
        client.force_login(owner)
        upload = SimpleUploadedFile("rows.csv", "prompt,seed\n山水畫,4\nfrom file,\n".encode())
        client.post(reverse("generation:batch_new"), {**form_data(prompts=""), "prompts_file": upload})
        rows = Batch.objects.get().generations.order_by("position").values_list("prompt", "seed")
        assert [prompt for prompt, _seed in rows] == ["山水畫", "from file"] and rows[0][1] == 4

    def test_a_bad_row_is_a_form_error_naming_the_row(self, client: Any, owner: Any) -> None:
        client.force_login(owner)
        upload = SimpleUploadedFile("rows.csv", b"prompt,images\nok,1\nbad,0\n")
        response = client.post(reverse("generation:batch_new"), {**form_data(prompts=""), "prompts_file": upload})
        assert "Row 3" in " ".join(response.context["form"].errors["prompts_file"])
        assert not Batch.objects.exists()

    def test_use_these_settings_carries_imported_rows_into_the_next_batch(
        self, client: Any, owner: Any, make_batch: Any
    ) -> None:
        first = make_batch(items=[PromptItem("a", seed=3, images=2), PromptItem("b")], prompts=[], run=False)
        client.force_login(owner)
        initial = client.get(reverse("generation:batch_new") + f"?from={first.pk}").context["form"].initial
        data = {**form_data(prompts=""), "items_json": initial["items_json"]}
        client.post(reverse("generation:batch_new"), data)
        again = Batch.objects.exclude(pk=first.pk).get()
        assert again.total == 3 and again.parameters["items"] == first.parameters["items"]
