"""Post-processing: every format really encoded, geometry, resampling, watermark, metadata, renditions."""

from __future__ import annotations

import io

import pytest
from django.core.files.storage import default_storage
from PIL import Image, ImageCms, ImageDraw, PngImagePlugin

from generation import library, output, renditions
from generation.models import Batch, GenerationStatus, Rendition
from generation.output import (
    FORMATS,
    OutputSettings,
    Resize,
    Watermark,
    check_output,
    output_render,
    read_exif_comment,
)
from generation.parameters import BatchParameters
from imagegen.errors import ValidationFailed

META = {"prompt": "一隻藍色的貓 🐱", "negative_prompt": "blurry", "seed": "42", "model": "m1", "provider": "local"}


def source_png(size: tuple[int, int] = (200, 100), colour: str = "navy", mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, colour).save(out, format="PNG")
    return out.getvalue()


def render(settings: OutputSettings, size: tuple[int, int] = (200, 100), **kwargs) -> Image.Image:
    encoded = output_render(source_png(size, **kwargs), settings, metadata=META)
    image = Image.open(io.BytesIO(encoded.data))
    assert (encoded.width, encoded.height) == image.size
    return image


class TestFormats:
    @pytest.mark.parametrize("name", FORMATS)
    def test_every_offered_format_is_really_encoded(self, name):
        image = render(OutputSettings(format=name))
        assert image.format == {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF"}[name]
        assert image.size == (200, 100)

    def test_jpeg_of_a_transparent_image_is_flattened_on_white(self):
        image = render(OutputSettings(format="jpeg"), colour=(0, 0, 0, 0), mode="RGBA")
        assert image.mode == "RGB"
        assert image.convert("L").getpixel((10, 10)) == 255

    def test_lower_quality_makes_a_smaller_file(self):
        noisy = io.BytesIO()
        Image.effect_noise((256, 256), 80).convert("RGB").save(noisy, format="PNG")
        low = output_render(noisy.getvalue(), OutputSettings(format="jpeg", quality=10), metadata=META)
        high = output_render(noisy.getvalue(), OutputSettings(format="jpeg", quality=95), metadata=META)
        assert len(low.data) < len(high.data)


class TestGeometry:
    def test_contain_keeps_the_whole_image_inside_the_box(self):
        assert render(OutputSettings(resize=Resize(100, 100, "contain"))).size == (100, 50)

    def test_cover_fills_the_box_and_crops(self):
        assert render(OutputSettings(resize=Resize(100, 100, "cover"))).size == (100, 100)

    def test_exact_stretches_to_the_box(self):
        assert render(OutputSettings(resize=Resize(60, 90, "exact"))).size == (60, 90)

    def test_resample_scale_multiplies_the_size_after_the_resize(self):
        assert render(OutputSettings(resample_scale=2)).size == (400, 200)
        assert render(OutputSettings(resize=Resize(100, 100, "contain"), resample_scale=1.5)).size == (150, 75)

    def test_planned_size_matches_what_is_made(self):
        settings = OutputSettings(resize=Resize(120, 120, "contain"), resample_scale=3)
        assert settings.planned_size((200, 100)) == render(settings).size


class TestWatermark:
    def changed(self, position: str, text: str = "ImageGen") -> set[str]:
        settings = OutputSettings(watermark=Watermark(text, position, 1.0))
        original = Image.open(io.BytesIO(source_png((200, 200), "navy"))).convert("RGB")
        marked = render(settings, size=(200, 200), colour="navy").convert("RGB")
        quadrants = {"top-left": (0, 0), "top-right": (100, 0), "bottom-left": (0, 100), "bottom-right": (100, 100)}
        result = set()
        for name, (x, y) in quadrants.items():
            box = (x, y, x + 100, y + 100)
            if original.crop(box).tobytes() != marked.crop(box).tobytes():
                result.add(name)
        return result

    @pytest.mark.parametrize("position", ["top-left", "top-right", "bottom-left", "bottom-right"])
    def test_the_text_lands_in_the_chosen_corner_only(self, position):
        assert self.changed(position) == {position}

    def test_centre_touches_the_middle(self):
        assert self.changed("center") == {"top-left", "top-right", "bottom-left", "bottom-right"}

    def test_cjk_text_draws_glyphs(self):
        assert self.changed("bottom-right", "浮水印") == {"bottom-right"}

    def test_the_watermark_font_has_real_cjk_glyphs(self):
        """Two different characters draw differently: a font without CJK would draw the same empty box."""
        if "CJK" not in str(output._font_path()) and "wqy" not in str(output._font_path()):
            pytest.skip("no CJK font installed on this machine")

        def drawn(character: str) -> bytes:
            image = Image.new("L", (48, 48))
            ImageDraw.Draw(image).text((4, 4), character, font=output.watermark_font(32), fill=255)
            return image.tobytes()

        assert drawn("浮") != drawn("印")
        assert drawn("\U0010fffd") == drawn("\U0010fffe"), "characters a font lacks all draw the same box"

    def test_zero_opacity_changes_nothing(self):
        plain = render(OutputSettings(format="png", metadata="strip", resample_scale=2)).convert("RGB")
        settings = OutputSettings(
            format="png", metadata="strip", resample_scale=2, watermark=Watermark("x", "center", 0)
        )
        assert render(settings).convert("RGB").tobytes() == plain.tobytes()


class TestMetadata:
    def test_png_carries_text_chunks(self):
        image = render(OutputSettings(format="png", resample_scale=2))
        assert isinstance(image, PngImagePlugin.PngImageFile)
        assert image.text["prompt"] == META["prompt"]
        assert (image.text["seed"], image.text["model"], image.text["provider"]) == ("42", "m1", "local")

    @pytest.mark.parametrize("name", [f for f in FORMATS if f != "png"])
    def test_lossy_formats_carry_exif_and_xmp(self, name):
        image = render(OutputSettings(format=name))
        assert read_exif_comment(image) == META
        description = image.getexif()[0x010E]
        assert description.encode("latin-1").decode("utf-8") == META["prompt"]  # UTF-8 bytes in the ASCII tag
        assert "一隻藍色的貓" in image.info["xmp"].decode("utf-8")

    @pytest.mark.parametrize("name", FORMATS)
    def test_strip_removes_everything(self, name):
        image = render(OutputSettings(format=name, metadata="strip"))
        assert not getattr(image, "text", {})
        assert not image.getexif()
        assert "xmp" not in image.info

    @pytest.mark.parametrize("name", FORMATS)
    def test_the_colour_profile_is_kept_even_when_stripping(self, name):
        profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
        source = io.BytesIO()
        Image.new("RGB", (32, 32), "teal").save(source, format="PNG", icc_profile=profile)
        encoded = output_render(source.getvalue(), OutputSettings(format=name, metadata="strip"), metadata=META)
        assert Image.open(io.BytesIO(encoded.data)).info.get("icc_profile") == profile


class TestCheckOutput:
    def check(self, raw, size=(512, 512)):
        return check_output(raw, source_size=size)

    def test_absent_or_original_settings_mean_no_post_processing(self):
        assert self.check(None) is None
        assert self.check({}) is None
        assert self.check({"format": "png", "metadata": "embed", "resample_scale": 1}) is None

    def test_full_settings_are_read_by_name(self):
        settings = self.check(
            {
                "format": "webp",
                "quality": 70,
                "resize": {"width": 256, "height": 128, "fit": "cover"},
                "resample_scale": 2,
                "watermark": {"text": "  © me ", "position": "top-left", "opacity": 0.3},
                "metadata": "strip",
            }
        )
        assert settings == OutputSettings(
            "webp", 70, Resize(256, 128, "cover"), 2.0, Watermark("© me", "top-left", 0.3), "strip"
        )
        assert OutputSettings.from_json(settings.to_json()) == settings

    @pytest.mark.parametrize(
        ("raw", "field"),
        [
            ("webp", "output"),
            ({"format": "gif"}, "output.format"),
            ({"format": "png", "quality": 80}, "output.quality"),
            ({"format": "jpeg", "quality": 0}, "output.quality"),
            ({"format": "jpeg", "quality": True}, "output.quality"),
            ({"resize": {"width": 10, "height": 100}}, "output.resize.width"),
            ({"resize": {"width": 100}}, "output.resize.height"),
            ({"resize": {"width": 100, "height": 100, "fit": "fill"}}, "output.resize.fit"),
            ({"resize": [100, 100]}, "output.resize"),
            ({"resample_scale": 5}, "output.resample_scale"),
            ({"resample_scale": "2"}, "output.resample_scale"),
            ({"resize": {"width": 4096, "height": 4096}, "resample_scale": 4}, "output.resample_scale"),
            ({"watermark": {"text": ""}}, "output.watermark.text"),
            ({"watermark": {"text": "x", "opacity": 2}}, "output.watermark.opacity"),
            ({"watermark": {"text": "x", "position": "middle"}}, "output.watermark.position"),
            ({"metadata": "keep"}, "output.metadata"),
            ({"colour": "red"}, "output.colour"),
        ],
    )
    def test_each_problem_names_its_field(self, raw, field):
        with pytest.raises(ValidationFailed) as caught:
            self.check(raw)
        assert caught.value.code == "invalid_output"
        assert list(caught.value.details) == [field]
        assert caught.value.message

    def test_settings_hash_differs_with_any_setting(self):
        assert OutputSettings(format="jpeg").settings_hash != OutputSettings(format="jpeg", quality=80).settings_hash


class TestBatchParameters:
    def test_a_batch_without_output_stores_no_output_key(self):
        assert "output" not in BatchParameters(width=512, height=512).to_json()

    def test_output_round_trips_through_stored_json(self):
        parameters = BatchParameters(width=512, height=512, output=OutputSettings(format="jpeg", quality=80))
        assert BatchParameters.from_json(parameters.to_json()) == parameters


@pytest.mark.django_db
class TestRenditions:
    def test_a_batch_with_output_gets_one_rendition_per_image_and_keeps_the_original(self, make_batch):
        output = {"format": "webp", "resize": {"width": 128, "height": 128, "fit": "cover"}}
        batch = make_batch(output=output)
        for generation in batch.generations.all():
            assert generation.status == GenerationStatus.SUCCEEDED
            assert Image.open(default_storage.open(generation.image.name)).format == "PNG"
            [rendition] = generation.renditions.all()
            image = Image.open(default_storage.open(rendition.file.name))
            assert (image.format, image.size) == ("WEBP", (128, 128))
            assert (rendition.format, rendition.width, rendition.height) == ("webp", 128, 128)
            assert rendition.bytes == default_storage.size(rendition.file.name)
            assert read_exif_comment(image)["prompt"] == generation.prompt

    def test_a_batch_without_output_makes_no_rendition(self, make_batch):
        make_batch()
        assert not Rendition.objects.exists()

    def test_making_the_same_rendition_twice_stores_one_file(self, make_batch):
        batch = make_batch(prompts=["a fox"])
        generation = batch.generations.get()
        settings = OutputSettings(format="jpeg")
        first = renditions.rendition_make(generation_id=generation.pk, output=settings)
        second = renditions.rendition_make(generation_id=generation.pk, output=settings)
        assert first.pk == second.pk
        assert len(default_storage.listdir(f"renditions/{batch.pk}")[1]) == 1

    def test_a_failed_rendition_keeps_the_image_succeeded(self, make_batch, monkeypatch):
        def broken(*args, **kwargs):
            raise OSError("encoder crashed")

        monkeypatch.setattr(renditions, "output_render", broken)
        batch = make_batch(prompts=["a fox"], output={"format": "jpeg"})
        assert batch.completed == 1
        assert not Rendition.objects.exists()

    def test_renditions_delete_removes_files_and_rows(self, make_batch):
        batch = make_batch(output={"format": "jpeg"})
        names = [r.file.name for r in Rendition.objects.all()]
        assert len(names) == 2
        assert renditions.renditions_delete(generation_ids=batch.generations.values_list("id", flat=True)) == 2
        assert not Rendition.objects.exists()
        assert not any(default_storage.exists(str(name)) for name in names)

    def test_deleting_images_or_their_batch_removes_rendition_files(self, make_batch, run_queue):
        batch = make_batch(output={"format": "jpeg"})
        first, second = batch.generations.order_by("position")
        first_file = first.renditions.get().file.name
        with run_queue():
            library.generations_delete(generations=[first])
        assert not default_storage.exists(str(first_file))
        second_file = second.renditions.get().file.name
        with run_queue():
            library.batch_delete(batch=Batch.objects.get(pk=batch.pk))
        assert not default_storage.exists(str(second_file))
        assert not Rendition.objects.exists()
