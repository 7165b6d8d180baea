"""The offline renderer: deterministic, different per prompt, honest about its sizes."""

import io

import pytest
from PIL import Image, ImageChops, ImageStat

from generation.providers.base import GenerationRequest, ProviderError
from generation.providers.local import SIZES, provider, render


def request(prompt: str = "a red fox", seed: int = 1, size: tuple[int, int] = (512, 512)) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, width=size[0], height=size[1], seed=seed, model="procedural-v1")


def difference(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def test_the_same_prompt_seed_and_size_give_the_same_png():
    assert provider.generate(request())[0].data == provider.generate(request())[0].data


def test_different_prompts_give_visibly_different_pictures():
    assert difference(render("紅色夕陽", 1, 256, 256), render("藍色海洋", 1, 256, 256)) > 20


def test_different_seeds_give_different_pictures():
    assert difference(render("a fox", 1, 256, 256), render("a fox", 2, 256, 256)) > 5


def test_colour_words_steer_the_palette():
    red = ImageStat.Stat(render("red red red", 3, 128, 128)).mean
    blue = ImageStat.Stat(render("blue blue blue", 3, 128, 128)).mean
    assert red[0] > red[2] and blue[2] > blue[0]


@pytest.mark.parametrize("size", SIZES)
def test_every_offered_size_renders_at_that_size(size):
    image = Image.open(io.BytesIO(provider.generate(request(size=size))[0].data))
    assert image.size == size


def test_an_unoffered_size_is_a_permanent_error():
    with pytest.raises(ProviderError) as caught:
        provider.generate(request(size=(500, 500)))
    assert caught.value.code == "unsupported_size" and not caught.value.retryable


def test_it_describes_itself_as_an_offline_renderer_not_an_ai_model():
    assert provider.offline is True
    assert "Not an AI model" in provider.description
