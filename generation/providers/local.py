"""The built-in `local` provider: an offline, deterministic procedural renderer (not an AI model).

It exists so the platform runs and is tested anywhere. The same prompt, seed and size always
give the same picture, and different prompts give visibly different ones: the prompt's words
choose the palette (colour words in English or Chinese are honoured) and the shapes.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import random
import re
import time

from django.conf import settings
from django.utils.translation import gettext_noop
from PIL import Image, ImageDraw, ImageFilter

from generation.providers.base import GeneratedImage, GenerationRequest, ModelInfo, ProviderError

SIZES = (
    (512, 512),
    (256, 256),
    (768, 768),
    (1024, 1024),
    (768, 512),
    (512, 768),
    (1024, 576),
    (576, 1024),
)

# Hues (0..1) for colour words, so "red sunset" leans red and "藍色海洋" leans blue.
COLOUR_HUES = {
    "red": 0.0,
    "紅": 0.0,
    "orange": 0.08,
    "橙": 0.08,
    "橘": 0.08,
    "gold": 0.12,
    "金": 0.12,
    "yellow": 0.15,
    "黃": 0.15,
    "green": 0.33,
    "綠": 0.33,
    "forest": 0.3,
    "森林": 0.3,
    "cyan": 0.5,
    "青": 0.5,
    "sea": 0.55,
    "ocean": 0.57,
    "海": 0.57,
    "sky": 0.58,
    "天空": 0.58,
    "blue": 0.62,
    "藍": 0.62,
    "purple": 0.78,
    "紫": 0.78,
    "pink": 0.9,
    "粉": 0.9,
    "sunset": 0.05,
    "夕陽": 0.05,
    "fire": 0.02,
    "火": 0.02,
    "night": 0.66,
    "夜": 0.66,
}
DARK_WORDS = ("night", "dark", "夜", "暗", "黑")
WORD_PATTERN = re.compile(r"[\w']+|[^\w\s]", re.UNICODE)


class LocalProvider:
    name = "local"
    label = gettext_noop("Local renderer (offline)")
    description = gettext_noop("Offline procedural renderer for trying the platform. Not an AI model.")
    offline = True
    accepts_user_key = False

    def is_configured(self) -> bool:
        return True

    def models(self) -> list[ModelInfo]:
        return [
            ModelInfo(
                id="procedural-v1",
                label=gettext_noop("Procedural v1"),
                sizes=SIZES,
                max_images_per_call=4,
                supports_seed=True,
                supports_negative_prompt=True,
                max_prompt_length=settings.MAX_PROMPT_LENGTH,
            )
        ]

    def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        if settings.LOCAL_PROVIDER_DELAY:
            time.sleep(settings.LOCAL_PROVIDER_DELAY)
        if settings.LOCAL_PROVIDER_FAIL_RATE and random.random() < settings.LOCAL_PROVIDER_FAIL_RATE:
            # Fault injection for trying retries, fallbacks and alerts without a real provider.
            raise ProviderError(
                "server_error", "Simulated transient failure (LOCAL_PROVIDER_FAIL_RATE).", retryable=True
            )
        if (request.width, request.height) not in SIZES:
            raise ProviderError(
                "unsupported_size", f"Size {request.width}x{request.height} is not offered.", retryable=False
            )
        image = render(request.prompt, request.seed, request.width, request.height)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", optimize=False, compress_level=3)
        return [GeneratedImage(data=buffer.getvalue(), mime_type="image/png", seed=request.seed)]


def render(prompt: str, seed: int, width: int, height: int) -> Image.Image:
    digest = hashlib.sha256(f"{prompt}\0{seed}".encode()).digest()
    rng = random.Random(digest)
    words = [w for w in WORD_PATTERN.findall(prompt.lower()) if w.strip()] or ["empty"]
    hues = _hues(prompt.lower(), rng)
    dark = any(w in prompt.lower() for w in DARK_WORDS)

    top = _colour(hues[0], 0.55, 0.25 if dark else 0.85)
    bottom = _colour(hues[-1], 0.7, 0.1 if dark else 0.45)
    mask = Image.linear_gradient("L").resize((width, height))
    canvas = Image.composite(Image.new("RGB", (width, height), bottom), Image.new("RGB", (width, height), top), mask)

    overlay = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    scale = min(width, height)
    for index, word in enumerate(words[:40]):
        word_rng = random.Random(hashlib.sha256(f"{word}\0{seed}\0{index}".encode()).digest())
        hue = hues[index % len(hues)] + word_rng.uniform(-0.05, 0.05)
        fill = (*_colour(hue, word_rng.uniform(0.4, 0.9), word_rng.uniform(0.35, 0.95)), word_rng.randint(70, 190))
        _shape(draw, word_rng, len(word) % 4, width, height, scale, fill)
    for _ in range(rng.randint(12, 40)):  # scattered sparkles tied to the seed
        x, y, r = rng.randrange(width), rng.randrange(height), rng.uniform(0.002, 0.008) * scale
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 255, 255, rng.randint(60, 200)))
    overlay = overlay.filter(ImageFilter.GaussianBlur(radius=scale / 400))
    return Image.alpha_composite(canvas.convert("RGBA"), overlay).convert("RGB")


def _hues(prompt: str, rng: random.Random) -> list[float]:
    named = [hue for word, hue in COLOUR_HUES.items() if word in prompt]
    if named:
        return [*named, (named[0] + 0.5) % 1.0]
    base = rng.random()
    return [base, (base + 0.08) % 1.0, (base + 0.5) % 1.0]


def _colour(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return int(r * 255), int(g * 255), int(b * 255)


def _shape(
    draw: ImageDraw.ImageDraw,
    rng: random.Random,
    kind: int,
    width: int,
    height: int,
    scale: int,
    fill: tuple[int, int, int, int],
) -> None:
    cx, cy = rng.uniform(0, width), rng.uniform(0, height)
    size = rng.uniform(0.06, 0.3) * scale
    if kind == 0:
        draw.ellipse((cx - size, cy - size, cx + size, cy + size), fill=fill)
    elif kind == 1:
        draw.rectangle((cx - size, cy - size / 2, cx + size, cy + size / 2), fill=fill)
    elif kind == 2:
        points = [(cx + rng.uniform(-size, size), cy + rng.uniform(-size, size)) for _ in range(3)]
        draw.polygon(points, fill=fill)
    else:
        points = [(rng.uniform(0, width), rng.uniform(0, height)) for _ in range(4)]
        draw.line(points, fill=fill, width=max(2, int(size / 8)), joint="curve")


provider = LocalProvider()
