"""Fashion-MNIST in its original IDX gzip files: find, verify, read, and (if asked) download.

Lives in the runtime package because evaluation needs the test set too; it uses only the
standard library and NumPy.
"""

from __future__ import annotations

import gzip
import os
import struct
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import file_digest

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
# MD5 sums published in the dataset's README (github.com/zalandoresearch/fashion-mnist).
MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
CANONICAL_MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
HOW_TO_GET = (
    "get the Fashion-MNIST files with `sudo apt-get install dataset-fashion-mnist` "
    "(Debian/Ubuntu), or put the four *-ubyte.gz files in a folder and pass --data-dir "
    "or set FASHION_MNIST_DIR"
)
_IDX_DTYPES = {0x08: np.uint8}


class DatasetError(Exception):
    """The dataset files are missing, corrupt or not what they claim to be."""


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # (N, 28, 28) uint8
    labels: np.ndarray  # (N,) uint8


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (gzip or plain), checking its magic number and size."""
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DatasetError(f"{path}: cannot read ({exc})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DatasetError(f"{path}: not an IDX file (bad magic number)")
    type_code, ndim = data[2], data[3]
    if type_code not in _IDX_DTYPES or ndim not in (1, 3):
        raise DatasetError(f"{path}: unsupported IDX type 0x{type_code:02x} with {ndim} dims")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{path}: truncated header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise DatasetError(
            f"{path}: expected {expected} bytes of data for shape {shape}, found {len(data) - header}"
        )
    return np.frombuffer(data, dtype=_IDX_DTYPES[type_code], offset=header).reshape(shape)


def candidate_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Where to look, in order: explicit folder, $FASHION_MNIST_DIR, Debian, Keras cache, ours."""
    dirs = []
    if data_dir:
        dirs.append(Path(data_dir))
    if os.environ.get("FASHION_MNIST_DIR"):
        dirs.append(Path(os.environ["FASHION_MNIST_DIR"]))
    dirs += [DEBIAN_DIR, Path.home() / ".keras" / "datasets" / "fashion-mnist", default_cache_dir()]
    return dirs


def find_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The first folder holding all four files; an explicit folder must hold them."""
    for folder in candidate_dirs(data_dir):
        if all((folder / name).is_file() for name in FILES.values()):
            return folder
        if data_dir and folder == Path(data_dir):
            missing = [n for n in FILES.values() if not (folder / n).is_file()]
            raise DatasetError(f"{folder}: missing {', '.join(missing)}; {HOW_TO_GET}")
    searched = ", ".join(str(d) for d in candidate_dirs(data_dir))
    raise DatasetError(f"Fashion-MNIST not found (looked in {searched}); {HOW_TO_GET}")


def load_split(which: str, data_dir: str | os.PathLike | None = None) -> Split:
    """Load 'train' or 't10k'/'test' as uint8 arrays, shapes checked against each other."""
    key = "test" if which in ("test", "t10k") else "train"
    folder = find_data_dir(data_dir)
    images = read_idx(folder / FILES[f"{key}_images"])
    labels = read_idx(folder / FILES[f"{key}_labels"])
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DatasetError(f"{folder / FILES[key + '_images']}: images are {images.shape}, not Nx28x28")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DatasetError(f"{folder}: {len(images)} {key} images but {labels.shape} labels")
    if labels.max(initial=0) > 9:
        raise DatasetError(f"{folder / FILES[key + '_labels']}: label above 9")
    return Split(images=images, labels=labels)


def file_checksums(data_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """sha256 of each dataset file, to record which data a model was trained on."""
    folder = find_data_dir(data_dir)
    return {name: file_digest(folder / name, "sha256") for name in FILES.values()}


def download(
    dest: str | os.PathLike,
    mirror: str = CANONICAL_MIRROR,
    md5: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Path:
    """Fetch the four files into `dest`, verifying MD5 and renaming atomically into place."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    md5 = MD5 if md5 is None else md5
    for name in FILES.values():
        target = dest / name
        if target.is_file() and file_digest(target, "md5") == md5[name]:
            continue
        url = mirror.rstrip("/") + "/" + name
        fd, tmp_name = tempfile.mkstemp(dir=dest, prefix=f".{name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                for chunk in iter(lambda: resp.read(1 << 20), b""):
                    out.write(chunk)
            got = file_digest(tmp_name, "md5")
            if got != md5[name]:
                raise DatasetError(f"{url}: checksum mismatch (md5 {got}, expected {md5[name]})")
            os.replace(tmp_name, target)
        except OSError as exc:
            raise DatasetError(f"cannot download {url} ({exc}); {HOW_TO_GET}") from None
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
    return dest


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edge-infer" / "fashion-mnist"


def ensure_data_dir(data_dir: str | os.PathLike | None = None, allow_download: bool = True) -> Path:
    """Find the files, else download them to the cache (one clear error if that fails too)."""
    try:
        return find_data_dir(data_dir)
    except DatasetError:
        if data_dir or not allow_download:
            raise
    return download(default_cache_dir())


def to_model_input(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) to float32 (N, 28, 28, 1) in [0, 1], the study's /255 scaling."""
    return (np.asarray(images).astype(np.float32) / 255.0)[..., None]
