"""Re-run (generation/rerun.py): "Use these settings" fills New batch with exactly what was typed."""

from __future__ import annotations

from typing import Any


def test_another_users_batch_cannot_be_rerun_from_the_portal(client: Any, other_user: Any, make_batch: Any) -> None:
    batch = make_batch(prompts=["a {x|y}"], template=True, seed=9, run=False)
    client.force_login(other_user)
    assert client.get(f"/batches/new/?from={batch.pk}").status_code == 404
    assert client.get(f"/batches/new/?from_generation={batch.generations.first().pk}").status_code == 404


def test_the_portal_prefills_new_batch_with_exactly_what_was_typed(client: Any, owner: Any, make_batch: Any) -> None:
    batch = make_batch(prompts=["a {x|y}"], template=True, seed=9, negative_prompt="blur", run=False)
    client.force_login(owner)
    form = client.get(f"/batches/new/?from={batch.pk}").context["form"]
    assert form.initial["prompts"] == "a {x|y}" and form.initial["template"] is True
    assert (form.initial["seed"], form.initial["negative_prompt"], form.initial["cache"]) == (9, "blur", True)
    one = client.get(f"/batches/new/?from_generation={batch.generations.get(position=1).pk}").context["form"]
    assert one.initial["prompts"] == "a y" and one.initial["template"] is False


def test_the_image_page_links_to_new_batch_with_its_settings(client: Any, owner: Any, make_batch: Any) -> None:
    batch = make_batch(prompts=["a"], run=False)
    generation = batch.generations.get()
    client.force_login(owner)
    page = client.get(f"/batches/images/{generation.pk}/").content.decode()
    assert f"/batches/new/?from_generation={generation.pk}" in page


def test_use_these_settings_also_fills_in_the_output_fieldset(client: Any, owner: Any, make_batch: Any) -> None:
    output = {
        "format": "webp",
        "quality": 70,
        "resize": {"width": 300, "height": 200, "fit": "cover"},
        "watermark": {"text": "© 貓", "position": "top-left", "opacity": 0.3},
        "metadata": "strip",
    }
    batch = make_batch(prompts=["a"], output=output, run=False)
    client.force_login(owner)
    page = client.get(f"/batches/new/?from={batch.pk}")
    initial = page.context["output_form"].initial
    assert (initial["format"], initial["quality"], initial["metadata"]) == ("webp", 70, "strip")
    assert (initial["resize_width"], initial["resize_height"], initial["resize_fit"]) == (300, 200, "cover")
    assert (initial["watermark_text"], initial["watermark_position"], initial["watermark_opacity"]) == (
        "© 貓",
        "top-left",
        0.3,
    )
    plain = client.get(f"/batches/new/?from={make_batch(prompts=['b'], run=False).pk}")
    assert plain.context["output_form"].initial == {}
