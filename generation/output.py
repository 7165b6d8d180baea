"""Post-processing of stored images: the typed `output` settings of a batch and the Pillow pipeline.

A batch may ask for another format and quality, a resize to a box, Lanczos resampling by a
factor (plain resampling, not AI upscaling), a text watermark and embedded or stripped
metadata. The original PNG is always kept; these settings make a derived file (a rendition).
Nothing here touches the database: `generation.renditions` stores what this module encodes.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from django.utils.translation import gettext as _
from PIL import Image, ImageDraw, ImageFont, ImageOps, PngImagePlugin, features

from imagegen.errors import ValidationFailed

FORMATS: tuple[str, ...] = ("png", "jpeg", "webp", *(("avif",) if features.check("avif") else ()))
LOSSY_FORMATS = frozenset({"jpeg", "webp", "avif"})
DEFAULT_QUALITY = {"jpeg": 90, "webp": 90, "avif": 75}
FITS = ("contain", "cover", "exact")
POSITIONS = ("top-left", "top-right", "bottom-left", "bottom-right", "center")
METADATA_CHOICES = ("embed", "strip")
MIN_SIDE, MAX_BOX_SIDE, MAX_OUTPUT_SIDE = 16, 4096, 8192
MAX_RESAMPLE_SCALE = 4.0
MAX_WATERMARK_LENGTH = 200
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "avif": "image/avif"}
EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp", "avif": "avif"}
PILLOW_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF"}
METADATA_FIELDS = ("prompt", "negative_prompt", "seed", "model", "provider")
EXIF_IMAGE_DESCRIPTION, EXIF_SOFTWARE, EXIF_IFD, EXIF_USER_COMMENT = 0x010E, 0x0131, 0x8769, 0x9286

# Fonts with CJK glyphs, most common install locations first (Debian/Ubuntu, Fedora, Arch, macOS,
# Windows), then a Latin-only TrueType font. Without any of them Pillow's built-in font is used,
# which draws Latin text only: CJK watermarks then need one of these fonts installed.
FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/Hiragino Sans GB.ttc",
    "C:/Windows/Fonts/msjh.ttc",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)


@dataclass(frozen=True)
class Resize:
    """Fit the image to a box: `contain` keeps it whole, `cover` fills and crops, `exact` stretches."""

    width: int
    height: int
    fit: str = "contain"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Resize:
        return cls(width=int(data["width"]), height=int(data["height"]), fit=str(data.get("fit") or "contain"))


@dataclass(frozen=True)
class Watermark:
    text: str
    position: str = "bottom-right"
    opacity: float = 0.5

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Watermark:
        position = str(data.get("position") or "bottom-right")
        return cls(text=str(data["text"]), position=position, opacity=float(data.get("opacity", 0.5)))


@dataclass(frozen=True)
class OutputSettings:
    """What to derive from the original image; the defaults describe the stored original itself."""

    format: str = "png"
    quality: int | None = None  # lossy formats only; None = the format's default
    resize: Resize | None = None
    resample_scale: float = 1.0  # Lanczos resampling by this factor, after the resize
    watermark: Watermark | None = None
    metadata: str = "embed"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OutputSettings:
        """Read settings already checked by `check_output` (stored on a batch or a job)."""
        quality = data.get("quality")
        return cls(
            format=str(data.get("format") or "png"),
            quality=None if quality is None else int(quality),
            resize=Resize.from_json(data["resize"]) if data.get("resize") else None,
            resample_scale=float(data.get("resample_scale") or 1.0),
            watermark=Watermark.from_json(data["watermark"]) if data.get("watermark") else None,
            metadata=str(data.get("metadata") or "embed"),
        )

    @property
    def is_original(self) -> bool:
        """These settings give back the stored original: nothing to derive."""
        return self == OutputSettings()

    @property
    def settings_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()

    @property
    def effective_quality(self) -> int | None:
        if self.format not in LOSSY_FORMATS:
            return None
        return self.quality if self.quality is not None else DEFAULT_QUALITY[self.format]

    def planned_size(self, source: tuple[int, int]) -> tuple[int, int]:
        """The size an image of `source` size comes out at."""
        width, height = source
        if self.resize is not None:
            box = (self.resize.width, self.resize.height)
            if self.resize.fit == "contain":
                ratio = min(box[0] / width, box[1] / height)
                width, height = max(1, round(width * ratio)), max(1, round(height * ratio))
            else:
                width, height = box
        if self.resample_scale != 1.0:
            width, height = max(1, round(width * self.resample_scale)), max(1, round(height * self.resample_scale))
        return width, height


# -- validation ---------------------------------------------------------------------------------


def _invalid(field: str, message: str) -> ValidationFailed:
    key = f"output.{field}" if field else "output"
    return ValidationFailed(message, code="invalid_output", details={key: [message]})


def _whole_number(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or not low <= value <= high:
        message = _("%(field)s must be a whole number from %(low)d to %(high)d.") % {
            "field": f"output.{field}",
            "low": low,
            "high": high,
        }
        raise _invalid(field, message)
    return int(value)


def _choice(value: Any, field: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        message = _("%(field)s must be one of: %(choices)s.") % {
            "field": f"output.{field}",
            "choices": ", ".join(choices),
        }
        raise _invalid(field, message)
    return str(value)


def _object(value: Any, field: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _invalid(field, _("%(field)s must be an object.") % {"field": f"output.{field}" if field else "output"})
    return value


def _check_known(data: dict[str, Any], known: tuple[str, ...], prefix: str) -> None:
    unknown = sorted(set(data) - set(known))
    if unknown:
        message = _("Unknown setting %(name)s. Known: %(known)s.") % {
            "name": f"output.{prefix}{unknown[0]}",
            "known": ", ".join(known),
        }
        raise _invalid(f"{prefix}{unknown[0]}", message)


def _check_resize(raw: Any) -> Resize | None:
    data = _object(raw, "resize")
    if data is None:
        return None
    _check_known(data, ("width", "height", "fit"), "resize.")
    width = _whole_number(data.get("width"), "resize.width", MIN_SIDE, MAX_BOX_SIDE)
    height = _whole_number(data.get("height"), "resize.height", MIN_SIDE, MAX_BOX_SIDE)
    return Resize(width=width, height=height, fit=_choice(data.get("fit", "contain"), "resize.fit", FITS))


def _check_watermark(raw: Any) -> Watermark | None:
    data = _object(raw, "watermark")
    if data is None:
        return None
    _check_known(data, ("text", "position", "opacity"), "watermark.")
    text = data.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_WATERMARK_LENGTH:
        message = _("output.watermark.text must be text of 1 to %(max)d characters.") % {"max": MAX_WATERMARK_LENGTH}
        raise _invalid("watermark.text", message)
    opacity = data.get("opacity", 0.5)
    if isinstance(opacity, bool) or not isinstance(opacity, int | float) or not 0 <= opacity <= 1:
        raise _invalid("watermark.opacity", _("output.watermark.opacity must be a number from 0 to 1."))
    position = _choice(data.get("position", "bottom-right"), "watermark.position", POSITIONS)
    return Watermark(text=text.strip(), position=position, opacity=float(opacity))


def _check_scale(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= MAX_RESAMPLE_SCALE:
        message = _("output.resample_scale must be a number from 1 to %(max)d.") % {"max": MAX_RESAMPLE_SCALE}
        raise _invalid("resample_scale", message)
    return float(value)


def check_output(raw: Any, *, source_size: tuple[int, int]) -> OutputSettings | None:
    """Validate requested output settings; None when absent or when they describe the original.

    Every problem names its field (`output.quality`, `output.resize.fit`...) in the error details.
    """
    data = _object(raw, "")
    if data is None:
        return None
    _check_known(data, ("format", "quality", "resize", "resample_scale", "watermark", "metadata"), "")
    chosen_format = _choice(data.get("format", "png"), "format", FORMATS)
    quality = data.get("quality")
    if quality is not None:
        if chosen_format not in LOSSY_FORMATS:
            raise _invalid("quality", _("output.quality applies to jpeg, webp and avif only."))
        quality = _whole_number(quality, "quality", 1, 100)
    settings = OutputSettings(
        format=chosen_format,
        quality=quality,
        resize=_check_resize(data.get("resize")),
        resample_scale=_check_scale(data.get("resample_scale", 1)),
        watermark=_check_watermark(data.get("watermark")),
        metadata=_choice(data.get("metadata", "embed"), "metadata", METADATA_CHOICES),
    )
    if max(settings.planned_size(source_size)) > MAX_OUTPUT_SIDE:
        message = _("The output would be larger than %(max)d pixels on a side; lower the size or the scale.") % {
            "max": MAX_OUTPUT_SIDE
        }
        raise _invalid("resample_scale", message)
    return None if settings.is_original else settings


def output_from_provider_options(options: dict[str, Any]) -> dict[str, Any] | None:
    """A model's own `output_format` option (OpenAI, Stability) as output settings.

    The stored original is always PNG; a JPEG or WebP chosen there is delivered as a rendition.
    """
    chosen = options.get("output_format")
    return {"format": chosen} if chosen in LOSSY_FORMATS else None


# -- the pipeline ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Encoded:
    data: bytes
    format: str
    width: int
    height: int


def output_render(source: bytes, settings: OutputSettings, *, metadata: dict[str, str]) -> Encoded:
    """Derive one file from the original's bytes: resize, resample, watermark, encode."""
    with Image.open(io.BytesIO(source)) as opened:
        opened.load()
        icc_profile = opened.info.get("icc_profile")  # colour, not metadata: kept even when stripping
        image = opened.convert("RGBA" if "A" in opened.getbands() else "RGB")
    if max(settings.planned_size(image.size)) > MAX_OUTPUT_SIDE:  # a row of another size than the batch's
        raise ValueError(f"output larger than {MAX_OUTPUT_SIDE} px a side")
    image = _resize(image, settings)
    if settings.watermark is not None:
        image = _watermark(image, settings.watermark)
    if settings.format == "jpeg" and image.mode == "RGBA":
        image = _flatten(image)
    data = _encode(image, settings, metadata if settings.metadata == "embed" else None, icc_profile)
    return Encoded(data=data, format=settings.format, width=image.width, height=image.height)


def _resize(image: Image.Image, settings: OutputSettings) -> Image.Image:
    lanczos = Image.Resampling.LANCZOS
    if settings.resize is not None:
        box = (settings.resize.width, settings.resize.height)
        if settings.resize.fit == "contain":
            image = ImageOps.contain(image, box, method=lanczos)
        elif settings.resize.fit == "cover":
            image = ImageOps.fit(image, box, method=lanczos)
        else:
            image = image.resize(box, lanczos)
    if settings.resample_scale != 1.0:
        scale = settings.resample_scale
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), lanczos)
    return image


@functools.cache
def _font_path() -> str | None:
    return next((path for path in FONT_CANDIDATES if Path(path).is_file()), None)


def watermark_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A font that draws CJK text when one is installed, else Pillow's own (Latin only)."""
    path = _font_path()
    if path is not None:
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            pass
    return ImageFont.load_default(size=size)


def _watermark(image: Image.Image, watermark: Watermark) -> Image.Image:
    """White text with a dark outline, about a twentieth of the shorter side high, in one corner or the centre."""
    size = max(10, min(image.size) // 20)
    font = watermark_font(size)
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    stroke = max(1, size // 12)
    left, top, right, bottom = draw.textbbox((0, 0), watermark.text, font=font, stroke_width=stroke)
    x, y = _corner(image.size, (int(right - left), int(bottom - top)), watermark.position, margin=max(4, size // 2))
    alpha = round(255 * watermark.opacity)
    draw.text(
        (x - left, y - top),
        watermark.text,
        font=font,
        fill=(255, 255, 255, alpha),
        stroke_width=stroke,
        stroke_fill=(0, 0, 0, alpha),
    )
    base = image.convert("RGBA")
    base.alpha_composite(layer)
    return base if image.mode == "RGBA" else base.convert("RGB")


def _corner(image: tuple[int, int], text: tuple[int, int], position: str, *, margin: int) -> tuple[int, int]:
    free_x, free_y = max(0, image[0] - text[0]), max(0, image[1] - text[1])
    margin_x, margin_y = min(margin, free_x // 2), min(margin, free_y // 2)
    horizontal = {"left": margin_x, "right": free_x - margin_x, "center": free_x // 2}
    vertical = {"top": margin_y, "bottom": free_y - margin_y, "center": free_y // 2}
    if position == "center":
        return horizontal["center"], vertical["center"]
    row, _dash, column = position.partition("-")
    return horizontal[column], vertical[row]


def _flatten(image: Image.Image) -> Image.Image:
    """JPEG has no alpha: transparent parts become white."""
    background = Image.new("RGB", image.size, (255, 255, 255))
    background.paste(image, mask=image.getchannel("A"))
    return background


def _encode(
    image: Image.Image, settings: OutputSettings, metadata: dict[str, str] | None, icc_profile: bytes | None
) -> bytes:
    out = io.BytesIO()
    options: dict[str, Any] = {"icc_profile": icc_profile} if icc_profile else {}
    if settings.format == "png":
        options["compress_level"] = 6
        if metadata:
            info = PngImagePlugin.PngInfo()
            for key, value in metadata.items():
                info.add_itxt(key, value)
            options["pnginfo"] = info
    else:
        options["quality"] = settings.effective_quality
        if metadata:
            options["exif"] = _exif(metadata)
            options["xmp"] = _xmp(metadata)
    image.save(out, format=PILLOW_FORMATS[settings.format], **options)
    return out.getvalue()


def _exif(metadata: dict[str, str]) -> Image.Exif:
    """ImageDescription: the prompt in UTF-8; UserComment: every field as ASCII JSON (lossless)."""
    exif = Image.Exif()
    exif[EXIF_IMAGE_DESCRIPTION] = metadata.get("prompt", "").encode("utf-8")
    exif[EXIF_SOFTWARE] = "ImageGen"
    exif.get_ifd(EXIF_IFD)[EXIF_USER_COMMENT] = b"ASCII\0\0\0" + json.dumps(metadata, ensure_ascii=True).encode()
    return exif


def _xmp(metadata: dict[str, str]) -> bytes:
    """An XMP packet: dc:description is the prompt, imagegen:* hold every field."""
    fields = "".join(f"<imagegen:{key}>{escape(value)}</imagegen:{key}>" for key, value in metadata.items())
    packet = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:imagegen="https://imagegen.invalid/ns/1.0/">'
        f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{escape(metadata.get("prompt", ""))}</rdf:li>'
        f"</rdf:Alt></dc:description>{fields}</rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    return packet.encode("utf-8")


def read_exif_comment(image: Image.Image) -> dict[str, str]:
    """The fields embedded in a JPEG/WebP/AVIF rendition's EXIF UserComment (empty when stripped)."""
    raw = image.getexif().get_ifd(EXIF_IFD).get(EXIF_USER_COMMENT)
    if not isinstance(raw, bytes) or not raw.startswith(b"ASCII\0\0\0"):
        return {}
    return dict(json.loads(raw[8:].decode("ascii")))


def embedded_metadata(*, prompt: str, negative_prompt: str, seed: int, model: str, provider: str) -> dict[str, str]:
    return {
        "prompt": prompt,
        "negative_prompt": negative_prompt,
        "seed": str(seed),
        "model": model,
        "provider": provider,
    }
