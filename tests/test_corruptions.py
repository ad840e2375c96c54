"""The MNIST-C-style corruption suite: contract of `corrupt`, determinism, severity ordering."""

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_infer.evaluation import corruptions
from edge_infer.evaluation.corruptions import CORRUPTIONS, SEVERITIES, corrupt

EXPECTED = [
    "shot_noise", "impulse_noise", "gaussian_blur", "motion_blur", "shear", "scale", "rotate",
    "translate", "brightness", "contrast", "inverse", "stripe", "fog", "spatter", "dotted_line",
    "zigzag", "jpeg", "pixelate",
]
# Corruptions that draw nothing at random: the seed must not matter.
DETERMINISTIC = {"gaussian_blur", "brightness", "contrast", "inverse", "jpeg", "pixelate"}
NAMES = list(CORRUPTIONS)
CASES = [(name, severity) for name in NAMES for severity in SEVERITIES]


def blob_images(n: int, seed: int = 0) -> np.ndarray:
    """Bright elliptical blobs (like a garment) of varied size, place and brightness on black."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:28, 0:28].astype(np.float64)
    centre = rng.uniform(10, 18, size=(n, 2, 1, 1))
    radii = rng.uniform(4, 10, size=(n, 2, 1, 1))
    peak = rng.uniform(150, 255, size=(n, 1, 1))
    distance = ((rows - centre[:, 0]) / radii[:, 0]) ** 2 + ((cols - centre[:, 1]) / radii[:, 1]) ** 2
    profile = np.clip(1.5 - distance, 0.0, 1.0)  # flat top, soft one-pixel-ish rim
    texture = rng.uniform(0.8, 1.0, size=(n, 28, 28))
    return np.rint(profile * texture * peak).astype(np.uint8)


IMAGES = blob_images(16)
ORDERING_IMAGES = blob_images(50, seed=1)


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_registry_has_the_eighteen_corruptions_in_order():
    assert isinstance(CORRUPTIONS, dict)
    assert NAMES[: len(EXPECTED)] == EXPECTED
    assert SEVERITIES == (1, 2, 3, 4, 5)
    assert DETERMINISTIC <= set(NAMES)
    for name, function in CORRUPTIONS.items():
        assert callable(function)
        assert function.__doc__ and function.__doc__.strip(), f"{name} needs a docstring"


@pytest.mark.parametrize("name,severity", CASES)
def test_contract_for_every_corruption_and_severity(name, severity):
    out = corrupt(IMAGES, name, severity, seed=0)
    assert out.shape == IMAGES.shape
    assert out.dtype == np.uint8
    assert 0 <= out.min() and out.max() <= 255
    assert not np.array_equal(out, IMAGES), "the corruption changed nothing"
    assert np.array_equal(out, corrupt(IMAGES, name, severity, seed=0)), "not deterministic"
    other_seed = corrupt(IMAGES, name, severity, seed=1)
    if name in DETERMINISTIC:
        assert np.array_equal(out, other_seed)
    else:
        assert not np.array_equal(out, other_seed), "a different seed gave the same output"


@pytest.mark.parametrize("name", NAMES)
def test_function_contract_float_in_float_out(name):
    x = IMAGES.astype(np.float32) / 255.0
    before = x.copy()
    result = CORRUPTIONS[name](x, 3, np.random.default_rng(0))
    assert result.shape == x.shape
    assert np.issubdtype(np.asarray(result).dtype, np.floating)
    assert np.isfinite(result).all()
    assert np.array_equal(x, before), "the function modified its input"


@pytest.mark.parametrize("name", NAMES)
def test_single_image_matches_a_batch_of_one(name):
    image = IMAGES[3]
    out = corrupt(image, name, 4, seed=7)
    assert out.shape == (28, 28) and out.dtype == np.uint8
    assert np.array_equal(out, corrupt(image[None], name, 4, seed=7)[0])


@pytest.mark.parametrize("name", NAMES)
def test_severity_five_is_stronger_than_severity_one(name):
    clean = ORDERING_IMAGES
    mild = mean_abs_diff(corrupt(clean, name, 1, seed=0), clean)
    strong = mean_abs_diff(corrupt(clean, name, 5, seed=0), clean)
    assert strong > mild > 0, (name, mild, strong)


@pytest.mark.parametrize("name", NAMES)
def test_severity_three_is_between(name):
    clean = ORDERING_IMAGES
    damage = [mean_abs_diff(corrupt(clean, name, s, seed=0), clean) for s in (1, 3, 5)]
    assert damage[0] < damage[1] < damage[2], (name, damage)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(NAMES),
    severity=st.sampled_from(SEVERITIES),
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 4),
    data_seed=st.integers(0, 1000),
)
def test_any_input_gives_valid_output_and_is_left_untouched(name, severity, seed, n, data_seed):
    images = np.random.default_rng(data_seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    before = images.copy()
    images.setflags(write=False)  # like the dataset's arrays, which are read-only buffers
    out = corrupt(images, name, severity, seed=seed)
    assert out.shape == images.shape and out.dtype == np.uint8
    assert out is not images and not np.shares_memory(out, images)
    assert np.array_equal(images, before), "input modified in place"
    assert np.array_equal(out, corrupt(images, name, severity, seed=seed))


def test_extreme_images_black_and_white():
    for value in (0, 255):
        images = np.full((3, 28, 28), value, dtype=np.uint8)
        for name in NAMES:
            out = corrupt(images, name, 5, seed=0)
            assert out.shape == images.shape and out.dtype == np.uint8


def test_empty_batch():
    out = corrupt(np.zeros((0, 28, 28), np.uint8), "fog", 3)
    assert out.shape == (0, 28, 28) and out.dtype == np.uint8


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown corruption") as info:
        corrupt(IMAGES, "frost", 1)
    assert "shot_noise" in str(info.value) and "pixelate" in str(info.value)
    with pytest.raises(ValueError):
        corrupt(IMAGES, None, 1)


@pytest.mark.parametrize("severity", [0, 6, -1, 2.5, 3.0, "3", True, None])
def test_bad_severity(severity):
    with pytest.raises(ValueError, match="severity"):
        corrupt(IMAGES, "fog", severity)


def test_numpy_integer_severity_is_fine():
    assert corrupt(IMAGES, "fog", np.int64(2)).shape == IMAGES.shape


@pytest.mark.parametrize(
    "images",
    [
        np.zeros((28,), np.uint8),
        np.zeros((2, 28, 27), np.uint8),
        np.zeros((2, 28, 28, 1), np.uint8),
        np.zeros((1, 1, 28, 28), np.uint8),
        np.zeros((2, 28, 28), np.float32),
        np.zeros((2, 28, 28), np.int64),
        [[0] * 28] * 28,
    ],
)
def test_bad_images(images):
    with pytest.raises(ValueError):
        corrupt(images, "shot_noise", 1)


def test_module_imports_only_numpy_pillow_and_the_standard_library():
    tree = ast.parse(Path(corruptions.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert imported - set(sys.stdlib_module_names) <= {"numpy", "PIL"}, imported
    code = (
        "import sys, edge_infer.evaluation.corruptions\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'tensorflow', 'keras', 'scipy', 'cv2', 'skimage', 'torch'})\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_kinds_corruption_training_imitates_are_named_as_the_suite_names_them():
    from train.registry import CORRUPTION_MIX_KINDS

    assert set(CORRUPTION_MIX_KINDS) < set(CORRUPTIONS)  # a strict subset: some kinds stay unseen
