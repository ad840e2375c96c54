"""The real-photo pool for training (train/photo_pool.py): NumPy and Pillow only, no TensorFlow."""

import csv

import numpy as np
import pytest

from edge_infer.preprocess import PREPROCESS_VERSION
from train import photo_pool

from .scenes import garment_on_floor, packshot


def test_the_committed_pool_matches_this_preprocessing_and_is_balanced_enough_to_use():
    photos = photo_pool.load_photos(photo_pool.POOL_FILE, split=None)
    assert photos.images.dtype == np.uint8 and photos.images.shape[1:] == (28, 28)
    assert len(photos.images) == len(photos.labels) == len(photos.groups) > 2000
    counts = np.bincount(photos.labels, minlength=10)
    assert counts[[0, 1, 2, 3, 4, 6]].min() > 150  # the garments the pool has many photos of
    assert counts[8] == 0  # no bags in the pool: the README says so; this notices if that changes


def test_held_out_photographers_never_reach_training():
    everything = photo_pool.load_photos(photo_pool.POOL_FILE, split=None)
    training = photo_pool.load_photos(photo_pool.POOL_FILE, split="train")
    held = photo_pool.load_photos(photo_pool.POOL_FILE, split="holdout")
    assert len(training.labels) + len(held.labels) == len(everything.labels)
    assert not set(training.groups) & set(held.groups)
    assert all(photo_pool.held_out(g) for g in set(held.groups))
    assert 0.05 < len(held.labels) / len(everything.labels) < 0.3


def test_mapping_skips_ambiguous_labels_and_labels_shoes_one_by_one(tmp_path):
    shoes = photo_pool.read_shoe_labels()
    assert set(shoes.values()) <= {5, 7, 9}
    (tmp_path / "images").mkdir()
    rows = [("a.jpg", "T-Shirt"), ("b.jpg", "Polo"), ("c.jpg", "Shoes"), (f"{next(iter(shoes))}.jpg", "Shoes"),
            ("d.jpg", "Outwear"), ("e.jpg", "Unknown")]
    with (tmp_path / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label", "kids", "photographer"])
        writer.writerows([(f"images/{name}", label, "False", "7") for name, label in rows])
    mapped = {r["file"]: r["class_index"] for r in photo_pool.mapped_rows(tmp_path)}
    assert mapped == {"images/a.jpg": 0, f"images/{next(iter(shoes))}.jpg": next(iter(shoes.values())),
                      "images/d.jpg": 4}


def test_a_users_labelled_folder_is_preprocessed_and_broken_files_are_skipped(tmp_path, capsys):
    garment_on_floor().save(tmp_path / "floor.jpg")
    packshot().save(tmp_path / "white.png")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "labels.csv").write_text("file,class_index\nfloor.jpg,0\nwhite.png,0\nbroken.jpg,3\n")
    photos = photo_pool.load_photos(tmp_path)
    assert list(photos.names) == ["floor.jpg", "white.png"]
    assert list(photos.labels) == [0, 0]
    assert photos.images.dtype == np.uint8 and photos.images[0].max() > 200
    assert "broken.jpg" in capsys.readouterr().err


def test_unusable_sources_raise_one_line_errors(tmp_path):
    with pytest.raises(photo_pool.PhotosError, match="no labels.csv"):
        photo_pool.load_photos(tmp_path)
    stale = tmp_path / "old.npz"
    np.savez(stale, images=np.zeros((1, 28, 28), np.uint8), labels=np.zeros(1, np.int64),
             groups=np.array([""]), names=np.array(["x"]), splits=np.array(["train"]),
             preprocess_version=np.array("robust-0"))
    with pytest.raises(photo_pool.PhotosError, match=f"robust-0.*{PREPROCESS_VERSION}"):
        photo_pool.load_photos(stale)
    (tmp_path / "labels.csv").write_text("file,class_index\nmissing.png,1\n")
    with pytest.raises(photo_pool.PhotosError, match="none of its 1"):
        photo_pool.load_photos(tmp_path)


def test_balanced_repeats_lift_small_classes_up_to_a_cap():
    labels = np.array([0] * 100 + [1] * 10 + [2] * 1)
    order = photo_pool.balanced_repeats(labels, per_class=100, max_repeat=5)
    counts = np.bincount(labels[order])
    assert counts.tolist() == [100, 50, 5]
    assert set(order) == set(range(len(labels)))  # every photo is used


def test_a_sample_of_photographers_keeps_each_persons_photos_together():
    photos = photo_pool.load_photos(photo_pool.POOL_FILE, split="train")
    quarter = photo_pool.sample_photographers(photos, 0.25, seed=0)
    people = set(photos.groups)
    chosen = set(quarter.groups)
    assert len(chosen) == round(0.25 * len(people))
    assert len(quarter.labels) == np.isin(photos.groups, list(chosen)).sum()  # all of their photos
    assert set(photo_pool.sample_photographers(photos, 0.25, seed=1).groups) != chosen
    assert photo_pool.sample_photographers(photos, 1.0, seed=0) is photos


def test_a_sample_of_a_folder_without_photographers_is_by_photo():
    photos = photo_pool.PhotoSet(np.zeros((40, 28, 28), np.uint8), np.arange(40) % 10, np.array([""] * 40),
                                 np.array([f"{i}.png" for i in range(40)]))
    assert len(photo_pool.sample_photographers(photos, 0.5, seed=0).labels) == 20
