"""Shoes photographed as pairs: the synthetic view the photo round trip can add (train.photo_style)."""

import numpy as np
from PIL import Image

from edge_infer.classes import FOOTWEAR
from train import photo_style
from train.roundtrip import roundtrip_images, with_footwear_pairs


def _shoe() -> np.ndarray:
    """A side-view shoe: a long sole with an upper over its back half, bright on black."""
    shoe = np.zeros((28, 28), np.uint8)
    shoe[18:22, 2:26] = 230
    shoe[10:18, 12:26] = 180
    return shoe


def _shoe_box() -> tuple[int, int]:
    """(length, height) of the shoe at the pair's working scale (56 px), fringe included."""
    left, top, right, bottom = Image.fromarray(_shoe()).resize((56, 56), Image.Resampling.BICUBIC).getbbox()
    return right - left, bottom - top


def test_overlaid_places_the_second_silhouette_at_its_offset_behind_the_first():
    first = np.full((2, 3), 100, np.uint8)
    first[1, 0] = 0  # no ink here: the canvas (empty) shows through
    second = np.full((2, 2), 200, np.uint8)
    canvas = photo_style._overlaid(first, second, dx=2, dy=-1)
    expected = np.array([[0, 0, 200, 200],
                         [100, 100, 100, 200],  # the front shoe hides the brighter one behind it
                         [0, 100, 100, 0]], np.uint8)
    np.testing.assert_array_equal(canvas, expected)


def test_from_above_two_upright_shoes_stand_side_by_side():
    length, height = _shoe_box()
    for seed in range(30):
        pair = photo_style.footwear_pair(_shoe(), np.random.default_rng(seed), view="above")
        assert pair.dtype == np.uint8 and pair.max() > 200
        assert pair[[0, -1]].any(axis=1).all() and pair[:, [0, -1]].any(axis=0).all()  # cropped to the pair
        rows, columns = pair.shape
        assert rows >= 0.9 * length  # upright: as tall as a shoe is long
        assert columns >= 1.8 * height  # two shoes abreast


def test_from_the_side_the_second_shoe_stands_behind_and_above_the_first():
    length, height = _shoe_box()
    for seed in range(30):
        pair = photo_style.footwear_pair(_shoe(), np.random.default_rng(seed), view="side")
        rows, columns = pair.shape
        assert 1.2 * height <= rows <= 1.65 * height  # raised by a quarter to 0.6 of a shoe's height
        assert length <= columns <= 1.21 * length  # and shifted by at most a fifth of its length


def test_both_views_are_drawn():
    shapes = [photo_style.footwear_pair(_shoe(), np.random.default_rng(seed)).shape for seed in range(40)]
    upright = sum(rows > _shoe_box()[0] * 0.9 for rows, _ in shapes)
    assert 10 < upright < 35  # about six in ten from above


def test_the_renderers_keep_a_pairs_proportions():
    pair = np.zeros((20, 60), np.uint8)
    pair[5:15, 5:55] = 255
    assert photo_style._scaled(pair, 90).size == (90, 30)
    resized = Image.fromarray(_shoe()).resize((90, 90), Image.Resampling.BICUBIC)
    assert photo_style._scaled(_shoe(), 90).tobytes() == resized.tobytes()  # a 28x28 image exactly as before
    photo = photo_style.render_listing_photo(pair, np.random.default_rng(0))
    assert isinstance(photo, Image.Image) and photo.mode == "RGB"


def test_only_the_drawn_share_of_the_shoes_becomes_pairs(tmp_path, monkeypatch):
    import train.roundtrip

    labels = np.arange(40) % 10
    images = np.stack([_shoe()] * 40)
    roundtrip = np.zeros((40, 28, 28, 1), np.float32)
    mixed = with_footwear_pairs(roundtrip, images, labels, 0.5, seed=3, cache_dir=tmp_path, workers=1)
    changed = np.flatnonzero(mixed.reshape(40, -1).any(axis=1))
    assert set(labels[changed]) <= set(FOOTWEAR)  # never a garment
    assert 2 <= len(changed) <= 10  # about half of the 12 shoes
    assert not roundtrip.any()  # the input is left alone
    assert len(list(tmp_path.glob("roundtrip-*-pair-1-*.npy"))) == 1

    def no_rendering(args):
        raise AssertionError("rendered again instead of reading the cache")

    monkeypatch.setattr(train.roundtrip, "_roundtrip_chunk", no_rendering)
    again = with_footwear_pairs(roundtrip, images, labels, 0.5, seed=3, cache_dir=tmp_path, workers=1)
    np.testing.assert_array_equal(again, mixed)  # the same draw, read back from the cache
    monkeypatch.undo()
    everything = with_footwear_pairs(roundtrip, images, labels, 1.0, seed=3, cache_dir=None, workers=1)
    assert set(np.flatnonzero(everything.reshape(40, -1).any(axis=1))) == set(np.flatnonzero(np.isin(labels, FOOTWEAR)))
    assert with_footwear_pairs(roundtrip, images, labels, 0.0, seed=3) is roundtrip


def test_pairs_are_cached_apart_from_single_views(tmp_path):
    images = np.stack([_shoe()] * 2)
    single = roundtrip_images(images, 0, tmp_path, workers=1)
    pairs = roundtrip_images(images, 0, tmp_path, workers=1, as_pairs=True)
    assert len(list(tmp_path.glob("*.npy"))) == 2 and not np.array_equal(single, pairs)
