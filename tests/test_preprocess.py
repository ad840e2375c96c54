import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from edge_infer.preprocess import find_object, plain, preprocess, robust

from .conftest import synthetic_images


def check_model_input(array):
    assert array.shape == (28, 28)
    assert array.dtype == np.float32
    assert 0.0 <= array.min() and array.max() <= 1.0


def centroid(array):
    total = array.sum()
    rows, cols = np.indices(array.shape)
    return (rows * array).sum() / total, (cols * array).sum() / total


def dark_square_on_white(size=(200, 160), box=(20, 30, 80, 110), colour=(40, 40, 40), background=(250, 250, 250)):
    image = Image.new("RGB", size, background)
    image.paste(colour, box)
    return image


def test_fashion_mnist_images_pass_through_unchanged():
    for array in synthetic_images(np.arange(10)):
        out = robust(Image.fromarray(array, "L"))
        assert np.array_equal(out, array.astype(np.float32) / 255.0)


def test_light_background_is_inverted_trimmed_and_centred():
    out = robust(dark_square_on_white())
    check_model_input(out)
    assert out[0, 0] == 0.0  # background black
    row, col = centroid(out)
    assert abs(row - 13.5) < 1.0 and abs(col - 13.5) < 1.0
    # the 60x80 box fills the longest edge (28) and keeps its aspect ratio (about 21 wide)
    assert (out > 0.5).any(axis=1).sum() >= 27
    assert 19 <= (out > 0.5).any(axis=0).sum() <= 23


def test_dark_background_is_not_inverted():
    image = dark_square_on_white(colour=(230, 230, 230), background=(10, 10, 10))
    out = robust(image)
    assert out[14, 14] > 0.8 and out[0, 0] == 0.0


def test_off_centre_small_object_is_centred():
    image = dark_square_on_white(size=(1000, 800), box=(850, 20, 900, 90))
    row, col = centroid(robust(image))
    assert abs(row - 13.5) < 1.0 and abs(col - 13.5) < 1.0


def test_transparent_background_uses_alpha_even_for_white_objects():
    image = Image.new("RGBA", (120, 120), (0, 0, 0, 0))
    image.paste((255, 255, 255, 255), (30, 10, 90, 110))  # a white garment on transparency
    check_model_input(robust(image))
    box, background, mask = find_object(image)
    assert mask is None  # alpha says where the garment is: no segmentation
    assert background == 255.0
    # the box comes from alpha, not colour (white on white); the mass trim may shave a pixel
    assert np.allclose(box, (30, 10, 90, 110), atol=1)


def test_exif_orientation_is_honoured():
    image = dark_square_on_white(size=(200, 100), box=(0, 0, 200, 30))  # a wide bar at the top
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image.save(buffer, "JPEG", exif=exif.tobytes(), quality=95)
    out = robust(Image.open(buffer))
    # displayed upright, the bar is tall: it spans more rows than columns
    assert (out > 0.5).any(axis=1).sum() > (out > 0.5).any(axis=0).sum()


@pytest.mark.parametrize("mode", ["CMYK", "I;16", "I", "F", "LA", "P", "1", "YCbCr", "RGBA", "L"])
def test_every_common_mode_is_handled(mode):
    base = dark_square_on_white()
    if mode == "I;16":
        image = Image.fromarray(np.asarray(base.convert("L"), dtype=np.uint16) * 257)
        assert image.mode == "I;16"
    elif mode == "I":
        image = base.convert("L").convert("I")
    elif mode == "F":
        image = base.convert("L").convert("F")
    else:
        image = base.convert(mode)
    out = robust(image)
    check_model_input(out)
    assert out.max() > 0.5 and out[0, 0] == 0.0


def test_palette_with_transparency():
    image = Image.new("P", (50, 50), 0)
    image.putpalette([255, 255, 255, 20, 20, 20] + [0] * 762)
    image.paste(1, (10, 10, 40, 30))
    image.info["transparency"] = 0
    out = robust(image)
    check_model_input(out)
    assert out.max() > 0.9


def test_animated_gif_uses_first_frame():
    frames = [dark_square_on_white(box=(10, 10, 190, 40)), dark_square_on_white(box=(10, 10, 40, 150))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    out = robust(Image.open(buffer))
    assert (out > 0.5).any(axis=0).sum() > (out > 0.5).any(axis=1).sum()  # wide, like frame 0


@pytest.mark.parametrize("size", [(1, 1), (2, 300), (3000, 2), (28, 28), (5, 5)])
def test_tiny_and_extreme_shapes(size):
    image = Image.new("RGB", size, (200, 200, 200))
    check_model_input(robust(image))
    check_model_input(plain(image))


def test_uniform_image_gives_black_not_noise():
    assert robust(Image.new("RGB", (64, 64), (128, 128, 128))).max() == 0.0


def test_plain_squashes_the_whole_frame():
    out = plain(dark_square_on_white(size=(100, 100), box=(0, 0, 50, 100)))
    check_model_input(out)
    assert out[:, :13].mean() > 0.8 and out[:, 15:].mean() < 0.1


def test_unknown_method_is_a_value_error():
    with pytest.raises(ValueError, match="unknown preprocessing"):
        preprocess(Image.new("L", (4, 4)), "fancy")


@settings(max_examples=40, deadline=None)
@given(
    width=st.integers(1, 400),
    height=st.integers(1, 400),
    mode=st.sampled_from(["RGB", "L", "RGBA", "LA"]),
    seed=st.integers(0, 2**16),
)
def test_any_image_gives_a_valid_model_input(width, height, mode, seed):
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "L": 1, "RGBA": 4, "LA": 2}[mode]
    pixels = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode)
    check_model_input(robust(image))
    check_model_input(plain(image))


def test_every_fashion_mnist_test_image_passes_through_unchanged(real_test_set):
    for array in real_test_set.images:
        assert np.array_equal(robust(Image.fromarray(array, "L")), array.astype(np.float32) / 255.0)


def test_a_light_28x28_image_is_not_mistaken_for_fashion_mnist():
    array = np.full((28, 28), 250, dtype=np.uint8)
    array[4:24, 8:20] = 30  # a dark garment on white, already 28x28
    out = robust(Image.fromarray(array, "L"))
    assert out[0, 0] == 0.0 and out[14, 14] > 0.9
