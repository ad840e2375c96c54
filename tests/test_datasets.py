import gzip
import hashlib
import http.server
import threading
from functools import partial

import numpy as np
import pytest

from edge_infer import datasets
from edge_infer.datasets import DatasetError

from .conftest import make_dataset, write_idx


def test_read_idx_round_trips(tmp_path):
    array = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    write_idx(tmp_path / "a.gz", array)
    write_idx(tmp_path / "b", array)
    assert np.array_equal(datasets.read_idx(tmp_path / "a.gz"), array)
    assert np.array_equal(datasets.read_idx(tmp_path / "b"), array)


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"\x00\x00\x08\x03" + (2).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + b"\x00" * 100, "expected"),
        (b"\x01\x02\x08\x01" + b"\x00" * 8, "magic"),
        (b"\x00\x00\x0d\x01" + (1).to_bytes(4, "big") + b"\x00" * 4, "unsupported"),
        (b"\x00\x00", "magic"),
    ],
)
def test_read_idx_rejects_wrong_files_naming_them(tmp_path, payload, reason):
    path = tmp_path / "broken-idx3-ubyte.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(payload)
    with pytest.raises(DatasetError, match=reason) as info:
        datasets.read_idx(path)
    assert "broken-idx3-ubyte.gz" in str(info.value)


def test_not_gzip_is_a_clear_error(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(b"plain text")
    with pytest.raises(DatasetError, match="x.gz"):
        datasets.read_idx(path)


def test_search_order_prefers_explicit_then_environment(tmp_path, monkeypatch):
    explicit = make_dataset(tmp_path / "explicit")
    env = make_dataset(tmp_path / "env")
    monkeypatch.setenv("FASHION_MNIST_DIR", str(env))
    assert datasets.find_data_dir(explicit) == explicit
    assert datasets.find_data_dir() == env


def test_missing_files_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.delenv("FASHION_MNIST_DIR", raising=False)
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist") as info:
        datasets.find_data_dir(tmp_path)
    assert "missing" in str(info.value)


def test_labels_and_images_must_agree(tmp_path):
    folder = make_dataset(tmp_path / "d")
    write_idx(folder / datasets.FILES["test_labels"], np.zeros(3, dtype=np.uint8))
    with pytest.raises(DatasetError, match="labels"):
        datasets.load_split("test", folder)


@pytest.fixture
def mirror(tmp_path):
    """A local HTTP server serving tiny IDX files, standing in for the dataset's mirror."""
    source = make_dataset(tmp_path / "served")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(source))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    md5 = {name: hashlib.md5((source / name).read_bytes()).hexdigest() for name in datasets.FILES.values()}
    yield f"http://127.0.0.1:{server.server_address[1]}/", md5, source
    server.shutdown()


def test_download_verifies_and_renames_into_place(mirror, tmp_path):
    url, md5, source = mirror
    dest = datasets.download(tmp_path / "cache", mirror=url, md5=md5)
    assert sorted(p.name for p in dest.iterdir()) == sorted(datasets.FILES.values())
    split = datasets.load_split("train", dest)
    assert np.array_equal(split.labels, datasets.load_split("train", source).labels)


def test_download_with_bad_checksum_leaves_nothing(mirror, tmp_path):
    url, md5, _ = mirror
    wrong = {name: "0" * 32 for name in md5}
    with pytest.raises(DatasetError, match="checksum mismatch"):
        datasets.download(tmp_path / "cache", mirror=url, md5=wrong)
    assert list((tmp_path / "cache").iterdir()) == []


def test_download_without_network_is_one_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="cannot download .*apt-get install"):
        datasets.download(tmp_path / "cache", mirror="http://127.0.0.1:9/", timeout=2)
    assert list((tmp_path / "cache").iterdir()) == []
