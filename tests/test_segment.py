"""Garment segmentation for phone photos (edge_infer.segment) and how robust preprocessing uses it."""

import numpy as np
import pytest
from PIL import Image, ImageFilter

from edge_infer.preprocess import _SEGMENT_BLUR, find_object, robust
from edge_infer.segment import SEGMENT_SIZE, fill_holes, garment_mask

from .conftest import synthetic_images
from .scenes import garment_on_floor, packshot, tshirt_mask


def thumbnail_mask_and_truth(box, size=(300, 400)):
    """The segmenter's mask on its thumbnail of a floor scene (as preprocessing makes it), and the
    true silhouette there."""
    photo = garment_on_floor(*size, box=box)
    thumb = photo.copy()
    thumb.thumbnail((SEGMENT_SIZE, SEGMENT_SIZE), Image.Resampling.BOX)
    truth = tshirt_mask(*size, box).resize(thumb.size, Image.Resampling.BOX)
    blurred = thumb.filter(ImageFilter.GaussianBlur(_SEGMENT_BLUR))
    return garment_mask(np.asarray(blurred, dtype=np.float32)), np.asarray(truth) > 127


def iou(a, b):
    return (a & b).sum() / max(1, (a | b).sum())


@pytest.mark.parametrize("box", [(40, 60, 260, 340), (-20, 40, 320, 380), (-40, -30, 340, 430)],
                         ids=["inside", "touching-sides", "filling-frame"])
def test_garment_is_found_on_a_textured_floor_even_when_it_touches_the_frame(box):
    mask, truth = thumbnail_mask_and_truth(box)
    assert mask is not None
    assert iou(mask, truth) > 0.8


def test_a_photo_with_a_varied_border_is_segmented_and_the_floor_becomes_black():
    region = find_object(garment_on_floor())
    assert region.mask is not None and region.background == 255.0
    out = robust(garment_on_floor())
    # the wooden floor beside the body, below the sleeves, is black; the body is bright
    assert out[-6:, 2:6].mean() < 0.05 and out[-6:, -6:-2].mean() < 0.05  # columns 2-5 and their mirror, 22-25
    assert out[14, 14] > 0.5


def test_packshots_are_not_segmented():
    for image in (packshot(), packshot(garment=(220, 220, 220), background=(15, 15, 15))):
        assert find_object(image).mask is None


def test_fashion_mnist_form_still_passes_through_unchanged():
    for array in synthetic_images(np.arange(10), seed=3):
        assert np.array_equal(robust(Image.fromarray(array, "L")), array.astype(np.float32) / 255.0)


def test_a_flat_picture_has_no_garment():
    assert garment_mask(np.full((40, 30, 3), 128.0, dtype=np.float32)) is None
    tiny = np.zeros((3, 3, 3), dtype=np.float32)
    assert garment_mask(tiny) is None  # nothing inside the border ring


def test_fill_holes_fills_enclosed_background_only():
    mask = np.zeros((9, 9), dtype=bool)
    mask[2:7, 2:7] = True
    mask[4, 4] = False  # a hole (a print on the garment)
    mask[0, 0] = False
    filled = fill_holes(mask)
    assert filled[4, 4]
    assert not filled[0, 0] and not filled[8, 8]
    # background reaching the frame stays background even when it cuts deep into the garment
    notch = mask.copy()
    notch[2:5, 4] = False
    assert not fill_holes(notch)[3, 4]


def test_an_opaque_alpha_channel_changes_nothing():
    # a phone photo saved as RGBA (a screenshot, say) is segmented like the same photo in RGB
    photo = garment_on_floor()
    with_alpha = photo.convert("RGBA")
    assert find_object(photo).mask is not None
    assert np.array_equal(robust(with_alpha), robust(photo))


def test_fashion_mnist_form_saved_as_grey_rgb_passes_through_unchanged():
    for array in synthetic_images(np.arange(3), seed=4):
        rgb = Image.fromarray(np.repeat(array[..., None], 3, axis=2), "RGB")
        assert np.array_equal(robust(rgb), array.astype(np.float32) / 255.0)


def test_inverse_3x3_inverts_symmetric_positive_definite_matrices():
    from edge_infer.segment import inverse_3x3

    rng = np.random.default_rng(0)
    factors = rng.normal(0, 30, (50, 3, 3))
    matrices = (factors @ factors.transpose(0, 2, 1) + 16 * np.eye(3)).astype(np.float32)
    inverses, determinants = inverse_3x3(matrices)
    products = inverses.astype(np.float64) @ matrices.astype(np.float64)
    assert np.abs(products - np.eye(3)).max() < 1e-3
    assert np.allclose(determinants, np.linalg.det(matrices.astype(np.float64)), rtol=1e-4)
