"""Corruption training: each operation does the one kind of damage its name says, in range."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from train import corruption_mix  # noqa: E402

pytestmark = [pytest.mark.train]


def _garments(n=32, seed=0):
    """Bright rectangles of random size and place on black: the model's view of a garment."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28, 1), np.float32)
    for image in images:
        top, left = rng.integers(3, 10, size=2)
        image[top:top + rng.integers(10, 16), left:left + rng.integers(8, 16)] = rng.uniform(0.5, 1.0)
    return tf.constant(images)


@pytest.mark.parametrize("operation", corruption_mix.OPERATIONS, ids=lambda op: op.__name__)
def test_every_operation_keeps_shape_and_range_and_changes_most_images(operation):
    tf.random.set_seed(1)
    images = _garments()
    out = operation(images).numpy()
    assert out.shape == images.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    changed = np.abs(out - images.numpy()).max(axis=(1, 2, 3)) > 0.05
    assert changed.mean() > 0.8


def test_rotation_goes_beyond_the_shape_augmentations_ten_degrees():
    bar = np.zeros((64, 28, 28, 1), np.float32)
    bar[:, 13:15, 2:26] = 1.0  # a horizontal bar through the centre
    out = corruption_mix.rotate_wide(tf.constant(bar)).numpy()[..., 0]
    rows, cols = np.mgrid[0:28, 0:28] - 13.5
    mass = out.sum(axis=(1, 2))
    mu20 = (out * cols**2).sum(axis=(1, 2)) / mass
    mu02 = (out * rows**2).sum(axis=(1, 2)) / mass
    mu11 = (out * rows * cols).sum(axis=(1, 2)) / mass
    degrees = np.abs(np.degrees(0.5 * np.arctan2(2 * mu11, mu20 - mu02)))  # the bar's orientation
    assert degrees.min() > 9.0 and degrees.max() < 61.0
    assert degrees.max() > 40.0


def test_inversion_turns_black_to_near_white():
    out = corruption_mix.invert(tf.zeros([16, 28, 28, 1])).numpy()
    assert out.min() >= 0.7 - 1e-6 and out.max() <= 1.0


def test_an_inverted_band_is_one_run_of_whole_rows_or_columns():
    tf.random.set_seed(2)
    flipped = corruption_mix.inverted_band(tf.zeros([64, 28, 28, 1])).numpy()[..., 0] > 0.5
    for image in flipped:
        rows, cols = image.all(axis=1), image.all(axis=0)
        lines = rows if rows.any() else cols
        assert image.sum() == lines.sum() * 28  # nothing flipped outside whole lines
        assert np.count_nonzero(np.diff(lines.astype(int)) != 0) <= 2  # one run


def test_lines_only_add_ink_and_salt_and_pepper_sets_a_small_share_to_black_or_white():
    tf.random.set_seed(3)
    images = _garments()
    drawn = corruption_mix.lines(images).numpy()
    assert (drawn >= images.numpy() - 1e-6).all()
    grey = tf.fill([64, 28, 28, 1], 0.5)
    noisy = corruption_mix.salt_and_pepper(grey).numpy()
    hit = noisy != 0.5
    assert set(np.unique(noisy[hit])) <= {0.0, 1.0}
    assert 0.01 < hit.mean() < 0.16


def test_pixelation_leaves_at_most_sixteen_distinct_columns_per_row():
    ramp = np.tile(np.linspace(0, 1, 28, dtype=np.float32), (8, 28, 1))[..., None]
    out = corruption_mix.pixelate(tf.constant(ramp)).numpy()[..., 0]
    assert max(len(np.unique(row)) for image in out for row in image) <= 16


def test_augmix_is_a_blend_in_range_and_only_replaces_heavy_images_when_asked():
    from train.augment import augment_batch

    tf.random.set_seed(4)
    images = _garments(64)
    mixed = corruption_mix.augmix(images).numpy()
    assert mixed.shape == images.shape and 0.0 <= mixed.min() and mixed.max() <= 1.0
    assert (np.abs(mixed - images.numpy()).max(axis=(1, 2, 3)) > 0.05).mean() > 0.8
    # light images never get it: flip, shift and erasing keep a grey image's tones {0, 0.5}
    grey = tf.fill([64, 28, 28, 1], 0.5)
    light = augment_batch(grey, heavy=tf.fill([64], False), corruption_mix=1.0).numpy()[:, 6:22, 6:22]
    assert set(np.unique(light)) <= {0.0, 0.5}
    from train.augment import _mix_some

    def changed_share(probability):
        out = _mix_some(images, probability).numpy()
        return (np.abs(out - images.numpy()).max(axis=(1, 2, 3)) > 0).mean()

    assert changed_share(0.0) == 0.0
    assert changed_share(1.0) > 0.9
    assert 0.25 < changed_share(0.5) < 0.75  # chosen image by image
    mixable = tf.constant([index % 2 == 0 for index in range(64)])
    gated = np.abs(_mix_some(images, 1.0, mixable).numpy() - images.numpy()).max(axis=(1, 2, 3)) > 0
    assert not gated[1::2].any() and gated[0::2].mean() > 0.9


def test_corruption_mixtures_go_only_to_the_chosen_classes(monkeypatch):
    from train import augment

    monkeypatch.setattr(augment, "augmix", tf.ones_like)  # a mixed image is then exactly all ones
    x = np.full((256, 28, 28, 1), 0.5, np.float32)
    y = np.array([0, 8] * 128)
    batches = augment.training_dataset(x, y, 64, seed=0, num_classes=10, augment=True, heavy_fraction=1.0,
                                       corruption_mix=1.0, corruption_mix_classes=(0, 3))
    images, labels = (np.concatenate(parts) for parts in zip(*[(a.numpy(), b.numpy()) for a, b in batches]))
    mixed = (images == 1.0).all(axis=(1, 2, 3))
    classes = labels.argmax(axis=1)
    assert mixed[classes == 0].all() and not mixed[classes == 8].any()
    # with light images in the batch, only the heavy ones of a chosen class get mixtures
    batches = augment.training_dataset(x, y, 64, seed=0, num_classes=10, augment=True, heavy_fraction=0.5,
                                       corruption_mix=1.0, corruption_mix_classes=(0,))
    images, labels = (np.concatenate(parts) for parts in zip(*[(a.numpy(), b.numpy()) for a, b in batches]))
    mixed, classes = (images == 1.0).all(axis=(1, 2, 3)), labels.argmax(axis=1)
    assert 0.3 < mixed[classes == 0].mean() < 0.7 and not mixed[classes == 8].any()  # about the heavy half
