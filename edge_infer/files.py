"""Finding image files and opening them safely.

Every problem with one file becomes an `ImageError` with a short reason; nothing here
prints or exits.
"""

from __future__ import annotations

import glob
import hashlib
import io
import os
import stat
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".jpe", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
# Pillow's decompression-bomb guard, made explicit: larger images are refused, not decoded.
MAX_PIXELS = 50_000_000
# JPEGs are decoded at a reduced scale (DCT scaling) when at least this big on both sides.
DRAFT_SIZE = 256
MAX_FILE_BYTES = 200 * 1024 * 1024


class ImageError(Exception):
    """One input file could not be used; the message is the reason, without the path."""


@dataclass(frozen=True)
class InputFile:
    path: Path  # where to open it
    name: str  # how to report it: relative to the folder argument when one was given
    error: str = ""  # set when the entry is already known to be unusable (missing, a folder)


@dataclass
class Collected:
    files: list[InputFile]  # in order, unusable entries included with their error
    skipped: int  # non-image files ignored in folders
    # sub-folders not entered (no `recursive`): (path, images directly inside)
    skipped_folders: list[tuple[str, int]] = field(default_factory=list)


def is_image_name(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS


def collect(arguments: list[str], recursive: bool = False) -> Collected:
    """Expand files, folders and glob patterns into image files, in a stable order."""
    result = Collected(files=[], skipped=0)
    seen: set[str] = set()

    def add(path: Path, name: str) -> None:
        key = os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            result.files.append(InputFile(path, name))

    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            _scan_folder(path, recursive, add, result)
        elif path.exists() or path.is_symlink():
            add(path, argument)  # named explicitly: try it whatever its extension
        elif glob.has_magic(argument):
            matches = sorted(glob.glob(argument, recursive=recursive))
            if not matches:
                result.files.append(InputFile(path, argument, "no file matches this pattern"))
            for match in matches:
                match_path = Path(match)
                if match_path.is_dir():
                    _scan_folder(match_path, recursive, add, result)
                elif is_image_name(match):
                    add(match_path, match)
                else:
                    result.skipped += 1
        else:
            result.files.append(InputFile(path, argument, "no such file or directory"))
    return result


def _scan_folder(folder: Path, recursive: bool, add, result: Collected) -> None:
    """Images in `folder`, named as the user can open them from where they are (the folder as
    given, joined with the path inside it); symlinked folders are not followed (no loops)."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        result.files.append(InputFile(folder, str(folder), f"cannot list folder ({exc.strerror or exc})"))
        return
    stack = list(reversed(entries))
    while stack:
        entry = stack.pop()
        relative = os.path.normpath(entry.path)  # scandir joins the folder as given with the name
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            is_dir = False
        if is_dir:
            if recursive:
                try:
                    children = sorted(os.scandir(entry.path), key=lambda e: e.name)
                except OSError as exc:
                    result.files.append(InputFile(Path(entry.path), relative,
                                                  f"cannot list folder ({exc.strerror or exc})"))
                    continue
                stack.extend(reversed(children))
            elif is_image_name(entry.name):
                result.files.append(InputFile(Path(entry.path), relative, "is a directory, not an image"))
            else:
                result.skipped_folders.append((relative, _count_images(entry.path)))
            continue
        if is_image_name(entry.name):
            add(Path(entry.path), relative)
        else:
            result.skipped += 1


def _count_images(folder: str) -> int:
    try:
        return sum(1 for entry in os.scandir(folder) if is_image_name(entry.name))
    except OSError:
        return 0


def open_image(path: str | os.PathLike, draft_size: int = DRAFT_SIZE) -> Image.Image:
    """Open and fully decode one image, or raise ImageError naming the reason."""
    path = Path(path)
    try:
        status = path.stat()
    except OSError as exc:
        raise ImageError(_os_reason(exc)) from None
    if stat.S_ISDIR(status.st_mode):
        raise ImageError("is a directory, not an image")
    _check_size(status.st_size)
    return _decode(path, draft_size)


def open_image_bytes(data: bytes, draft_size: int = DRAFT_SIZE) -> Image.Image:
    """A file's contents already read (from object storage, say): the same checks and decoding as
    `open_image`, so the same file gives the same image or the same reason."""
    _check_size(len(data))
    return _decode(io.BytesIO(data), draft_size)


def _check_size(size: int) -> None:
    if size == 0:
        raise ImageError("empty file")
    if size > MAX_FILE_BYTES:
        raise ImageError(f"file is {size / 2**20:.0f} MiB, above the {MAX_FILE_BYTES // 2**20} MiB limit")


def _decode(source: Path | io.BytesIO, draft_size: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(source)
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ImageError(
                    f"image is {width}x{height} pixels, above the {MAX_PIXELS // 1_000_000}-megapixel limit"
                )
            if image.format == "JPEG" and min(width, height) >= 2 * draft_size:
                image.draft("RGB" if image.mode != "L" else "L", (draft_size, draft_size))
            image.load()
            return image
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError("not a recognised image format") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"image dimensions are above the {MAX_PIXELS // 1_000_000}-megapixel limit "
                         "(decompression-bomb guard)") from None
    except OSError as exc:
        if exc.errno is not None:
            raise ImageError(_os_reason(exc)) from None
        raise ImageError(f"corrupt or truncated image ({exc})") from None
    except (SyntaxError, ValueError, EOFError, IndexError, TypeError, MemoryError) as exc:
        raise ImageError(f"corrupt image ({type(exc).__name__}: {exc})") from None


def _os_reason(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomic(path: str | os.PathLike, data) -> None:
    """Write a whole file or nothing: a temporary file beside it, then a rename.

    `data` is text, bytes, or a function that writes into the open binary handle (np.save)."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes files private; outputs are ordinary files
        with os.fdopen(fd, "wb") as handle:
            if callable(data):
                data(handle)
            else:
                handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
