#!/usr/bin/env python3
"""Regenerate unseen/: third-party clothing artwork none of us drew, plus a shifted test set.

Run from the repository root:

    python unseen/build.py [--seed 0]

It writes, under unseen/ (or --out):

* noto_*.png         Noto Color Emoji glyphs (Debian fonts-noto-color-emoji, OFL-1.1),
                     rendered with Pillow at the font's bitmap size and cropped to the ink.
* twemoji_*.png      Twemoji SVGs (npm @twemoji/svg, CC-BY 4.0), rasterised with rsvg-convert
                     (Debian librsvg2-bin) at 256 px wide on a transparent background.
* openclipart_*.png  hand-picked garments from Debian openclipart-png (public domain), copied
                     as drawn; anything longer than 1024 px on a side is downscaled to 1024 px.
* labels.csv         file,class_index,class_name,source,licence for the three sources above.
* ATTRIBUTION.md     credits, licences, what was done to the images, how to regenerate.
* shifted/*.jpg      100 Fashion-MNIST test images (10 per class, picked with --seed) re-presented
                     as listing photos by train.photo_style, with shifted/labels.csv.

Only the standard library, NumPy and Pillow are imported (plus edge_infer for the shifted set);
npm and rsvg-convert are run as programs. The output is deterministic: re-running gives
byte-identical files, apart from the @twemoji/svg version string if npm serves a newer release.
Every file is written to a temporary name in its folder and renamed into place, and images that
a previous run left in the generated folders but this run did not produce are removed.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
if str(REPO_ROOT) not in sys.path:  # so that `python unseen/build.py` finds edge_infer
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFont, PngImagePlugin  # noqa: E402

from edge_infer.classes import CLASS_NAMES  # noqa: E402

NOTO_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
NOTO_PACKAGE = "fonts-noto-color-emoji"
NOTO_BITMAP_SIZE = 109  # Noto Color Emoji is a CBDT bitmap font with a single 109 px strike
OPENCLIPART_DIR = Path("/usr/share/openclipart/png")
OPENCLIPART_PACKAGE = "openclipart-png"
TWEMOJI_NPM = "@twemoji/svg"
TWEMOJI_WIDTH = 256
MAX_SIDE = 1024
SHIFTED_PER_CLASS = 10
JPEG_QUALITY = 90
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
CSV_HEADER = ("file", "class_index", "class_name", "source", "licence")

# Emoji, by meaning, for each class they clearly belong to (no skin-tone variants exist for
# these). (output name, code point, class index). Left out because they fit no class:
# U+1FA73 shorts, U+1F458 kimono, U+1F97B sari, U+1F459 bikini, U+1FA71 one-piece swimsuit,
# U+1FA72 briefs, U+1F9E6 socks, U+1F9E3 scarf, U+1F9E4 gloves, U+1F460 high-heeled shoe,
# U+1F45E man's shoe, U+1F97F flat shoe, U+1FA70 ballet shoes, U+1F4BC briefcase,
# U+1F6CD shopping bags, U+1F9F3 luggage, U+1F9BA safety vest, hats and caps.
EMOJI = (
    ("tshirt", 0x1F455, 0),
    ("womans_clothes", 0x1F45A, 0),
    ("running_shirt", 0x1F3BD, 0),  # a sleeveless top (tank top) with a sash
    ("jeans", 0x1F456, 1),
    ("dress", 0x1F457, 3),
    ("coat", 0x1F9E5, 4),
    ("lab_coat", 0x1F97C, 4),
    ("womans_sandal", 0x1F461, 5),
    ("thong_sandal", 0x1FA74, 5),
    ("necktie", 0x1F454, 6),  # both fonts draw a shirt front (collar, placket) with the tie
    ("running_shoe", 0x1F45F, 7),
    ("handbag", 0x1F45C, 8),
    ("clutch_bag", 0x1F45D, 8),
    ("purse", 0x1F45B, 8),
    ("backpack", 0x1F392, 8),
    ("womans_boot", 0x1F462, 9),
    ("hiking_boot", 0x1F97E, 9),
)

# Open Clip Art Library drawings, each looked at, that clearly show one garment of one class:
# (output name, path under /usr/share/openclipart/png, class index). Left out as ambiguous or
# fitting no class: hats, the tie alone, mitten, pantyhose boxes, shorts, ice skate, shoe print,
# feet wearing sandals, paper bags, suitcases and luggage, a coat-and-skirt suit on a stand,
# a silhouette of a woman holding two dresses, a coat-check hanger sign, jewellery, sunglasses.
OPENCLIPART = (
    ("tshirt_black", "people/clothing/t-shirt_01.png", 0),
    ("tshirt_blue_logo", "people/clothing/t-shirt_02.png", 0),
    ("tshirt_blue_small_logo", "people/clothing/t-shirt_03.png", 0),
    ("pink_dress", "unsorted/vestito_rosa.png", 3),
    ("flip_flops", "people/clothing/thongs_01.png", 5),
    ("folded_silk_shirt", "people/clothing/camicia_in_seta_architet_01.png", 6),
    ("tennis_shoe", "people/clothing/tennis_shoe_jarno_vasama_.png", 7),
    ("tennis_shoes_pair", "people/clothing/tennis_shoes_jarno_vasam_.png", 7),
    ("handbag", "unsorted/borsetta.png", 8),
    ("summer_bag", "containers/borsa_estiva_architetto__01.png", 8),
    ("straw_tote", "food/fruit/straw_tote_linda_kim_01.png", 8),
    ("mountain_backpack", "unsorted/zaino_per_montagna.png", 8),
    ("hiking_boot", "people/clothing/hiking_boot_jarno_vasama_.png", 9),
)


class SourceError(RuntimeError):
    """A source (font, package, program, data set) is missing or unusable."""


# --------------------------------------------------------------------------- writing files


def _atomic_write(path: Path, write) -> None:
    """Call write(handle) on a temporary file beside `path`, then rename it into place."""
    from edge_infer.files import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, write)


def save_image(image: Image.Image, path: Path, **params) -> None:
    fmt = "JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG"
    _atomic_write(path, lambda handle: image.save(handle, fmt, **params))


def write_bytes(path: Path, data: bytes) -> None:
    _atomic_write(path, lambda handle: handle.write(data))


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_labels(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_HEADER, lineterminator="\n")
    writer.writeheader()
    for row in sorted(rows, key=lambda r: r["file"]):
        writer.writerow(row)
    write_text(path, buffer.getvalue())


def prune(folder: Path, keep: set[str], prefix: str = "") -> None:
    """Remove images in `folder` named `prefix*` that this run did not produce (left by an older run)."""
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if (path.is_file() and path.name.startswith(prefix) and path.suffix.lower() in IMAGE_SUFFIXES
                and path.name not in keep):
            path.unlink()


def row(file: str, class_index: int, source: str, licence: str) -> dict:
    return {
        "file": file,
        "class_index": class_index,
        "class_name": CLASS_NAMES[class_index],
        "source": source,
        "licence": licence,
    }


# --------------------------------------------------------------------------- sources


def build_noto(out: Path, font_path: Path) -> list[dict]:
    if not font_path.is_file():
        raise SourceError(
            f"Noto Color Emoji font not found at {font_path}: install the Debian package "
            f"{NOTO_PACKAGE} (apt-get install {NOTO_PACKAGE})"
        )
    try:
        font = ImageFont.truetype(str(font_path), NOTO_BITMAP_SIZE)
    except OSError as exc:
        raise SourceError(
            f"Pillow cannot load {font_path} at size {NOTO_BITMAP_SIZE} ({exc}): it needs FreeType "
            f"with colour bitmap (CBDT) support; reinstall {NOTO_PACKAGE} or Pillow"
        ) from exc
    folder = out  # flat, so that `edge-infer classify unseen/` finds the artwork without -r
    rows, names = [], set()
    for name, codepoint, class_index in EMOJI:
        margin = 48
        canvas = Image.new("RGBA", (136 + 2 * margin, 128 + 2 * margin), (0, 0, 0, 0))
        ImageDraw.Draw(canvas).text((margin, margin), chr(codepoint), font=font, embedded_color=True)
        box = canvas.getchannel("A").getbbox()
        if box is None:
            raise SourceError(f"{font_path} has no colour glyph for U+{codepoint:04X}; update {NOTO_PACKAGE}")
        if box[0] == 0 or box[1] == 0 or box[2] == canvas.width or box[3] == canvas.height:
            raise SourceError(f"U+{codepoint:04X} does not fit the rendering canvas; enlarge the margin")
        save_image(canvas.crop(box), folder / f"noto_{name}.png")
        names.add(f"noto_{name}.png")
        rows.append(row(f"noto_{name}.png", class_index, f"Noto Color Emoji U+{codepoint:04X}", "OFL-1.1"))
    prune(folder, names, "noto_")
    return rows


def fetch_twemoji(tmpdir: Path) -> Path:
    """npm-install @twemoji/svg into a throwaway folder and return the package folder."""
    npm = shutil.which("npm")
    if npm is None:
        raise SourceError(f"npm not found: install the Debian package npm (apt-get install npm) to fetch {TWEMOJI_NPM}")
    command = [npm, "install", "--prefix", str(tmpdir), "--no-audit", "--no-fund", "--loglevel=error", TWEMOJI_NPM]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise SourceError(f"`npm install {TWEMOJI_NPM}` failed ({last}); is the npm registry reachable?")
    return tmpdir / "node_modules" / "@twemoji" / "svg"


def build_twemoji(out: Path, package_dir: Path) -> tuple[list[dict], str]:
    # rsvg-convert is librsvg's command-line front end, GNOME's reference SVG renderer. It draws
    # the Twemoji SVGs faithfully, is a Debian package (librsvg2-bin), and adds no Python
    # dependency (cairosvg, svglib, ... would) to a project that only needs NumPy and Pillow.
    rsvg = shutil.which("rsvg-convert")
    if rsvg is None:
        raise SourceError("rsvg-convert not found: install the Debian package librsvg2-bin (apt-get install librsvg2-bin)")
    manifest = package_dir / "package.json"
    if not manifest.is_file():
        raise SourceError(f"{package_dir} is not an {TWEMOJI_NPM} package (no package.json); install it with npm")
    version = json.loads(manifest.read_text(encoding="utf-8"))["version"]
    folder = out
    rows, names = [], set()
    for name, codepoint, class_index in EMOJI:
        svg = package_dir / f"{codepoint:x}.svg"
        if not svg.is_file():
            raise SourceError(f"{svg} missing from {TWEMOJI_NPM} {version}")
        command = [rsvg, "--width", str(TWEMOJI_WIDTH), "--keep-aspect-ratio", "--format", "png", str(svg)]
        done = subprocess.run(command, capture_output=True)
        if done.returncode != 0:
            raise SourceError(f"rsvg-convert failed on {svg}: {done.stderr.decode(errors='replace').strip()}")
        with Image.open(io.BytesIO(done.stdout)) as check:
            if check.width != TWEMOJI_WIDTH or check.mode != "RGBA":
                raise SourceError(f"rsvg-convert gave {check.size} {check.mode} for {svg}, not {TWEMOJI_WIDTH} px RGBA")
        write_bytes(folder / f"twemoji_{name}.png", done.stdout)
        names.add(f"twemoji_{name}.png")
        source = f"Twemoji {svg.name} ({TWEMOJI_NPM} {version})"
        rows.append(row(f"twemoji_{name}.png", class_index, source, "CC-BY-4.0"))
    prune(folder, names, "twemoji_")
    return rows, version


def build_openclipart(out: Path, clipart_dir: Path) -> tuple[list[dict], list[tuple[str, str, str]]]:
    if not clipart_dir.is_dir():
        raise SourceError(
            f"Open Clip Art Library not found at {clipart_dir}: install the Debian package "
            f"{OPENCLIPART_PACKAGE} (apt-get install {OPENCLIPART_PACKAGE})"
        )
    folder = out
    rows, names, credits = [], set(), []
    for name, relative, class_index in OPENCLIPART:
        src = clipart_dir / relative
        if not src.is_file():
            raise SourceError(f"{src} missing: install or reinstall the Debian package {OPENCLIPART_PACKAGE}")
        target = folder / f"openclipart_{name}.png"
        with Image.open(src) as image:
            title = str(image.info.get("Title", "")).strip()
            author = str(image.info.get("Author", "")).strip() or "unknown"
            if max(image.size) <= MAX_SIDE:
                write_bytes(target, src.read_bytes())  # as drawn, byte for byte
                action = "copied unchanged"
            else:
                scale = MAX_SIDE / max(image.size)
                size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
                # Resize with premultiplied alpha so transparent pixels do not bleed dark fringes.
                small = image.convert("RGBA").convert("RGBa").resize(size, Image.Resampling.LANCZOS).convert("RGBA")
                info = PngImagePlugin.PngInfo()
                for key in ("Title", "Author"):
                    if image.info.get(key):
                        info.add_text(key, str(image.info[key]))
                save_image(small, target, pnginfo=info)
                action = f"downscaled from {image.width}x{image.height} to {size[0]}x{size[1]}"
        names.add(target.name)
        rows.append(row(target.name, class_index, f"{OPENCLIPART_PACKAGE} {relative}", "public domain"))
        credits.append((target.name, f"{relative} ({title or 'untitled'}), by {author}", action))
    prune(folder, names, "openclipart_")
    return rows, credits


def build_shifted(folder: Path, seed: int, data_dir: str | None, per_class: int = SHIFTED_PER_CLASS) -> list[dict]:
    from edge_infer.datasets import DatasetError, load_split
    from train.photo_style import render_listing_photo

    try:
        test = load_split("test", data_dir)
    except DatasetError as exc:
        raise SourceError(f"Fashion-MNIST test set unavailable: {exc}") from exc
    rng = np.random.default_rng(seed)
    picked = []
    for class_index in range(len(CLASS_NAMES)):
        candidates = np.flatnonzero(test.labels == class_index)
        if len(candidates) < per_class:
            raise SourceError(f"Fashion-MNIST test set has only {len(candidates)} images of class {class_index}")
        picked.extend(int(i) for i in rng.choice(candidates, per_class, replace=False))
    rows, names = [], set()
    for index in sorted(picked):
        photo = render_listing_photo(test.images[index], rng)
        name = f"{index:05d}.jpg"
        save_image(photo, folder / name, quality=JPEG_QUALITY)
        names.add(name)
        rows.append(
            # relative to shifted/ itself, like every labels.csv that `edge-infer evaluate` reads
            row(name, int(test.labels[index]), f"Fashion-MNIST test image {index}", "MIT (Fashion-MNIST)")
        )
    prune(folder, names)
    write_labels(folder / "labels.csv", rows)
    return rows


# --------------------------------------------------------------------------- attribution


def attribution(twemoji_version: str, clipart_credits: list[tuple[str, str, str]], seed: int) -> str:
    emoji_list = ", ".join(f"U+{cp:04X} ({name} -> {CLASS_NAMES[k]})" for name, cp, k in EMOJI)
    clipart_lines = "\n".join(f"- `{file}`: {what}; {action}." for file, what, action in clipart_credits)
    return f"""# Attribution for unseen/

Real artwork that none of this project's authors drew, used to test the classifier on images
unlike Fashion-MNIST. Every image is listed in `labels.csv` (file, class, source, licence);
`shifted/` has its own `shifted/labels.csv`. This file is generated by `unseen/build.py`.

## Noto Color Emoji (OFL-1.1): `noto_*.png`

Glyphs of the Noto Color Emoji font by Google (Copyright 2013-2017 Google Inc.; see
https://github.com/googlefonts/noto-emoji), licensed under the SIL Open Font License 1.1, as
shipped in the Debian package `{NOTO_PACKAGE}`. (The noto-emoji project also publishes the same
emoji images under the Apache License 2.0.)
What was done: each emoji was rendered with Pillow from `NotoColorEmoji.ttf` at its bitmap size
({NOTO_BITMAP_SIZE}) in colour on a transparent canvas and cropped to the drawn pixels.
Emoji used: {emoji_list}.

## Twemoji (CC-BY-4.0): `twemoji_*.png`

Twemoji graphics, Copyright 2019 Twitter, Inc and other contributors
(https://github.com/twitter/twemoji), now maintained by jdecked and the Twemoji contributors
(https://github.com/jdecked/twemoji). Graphics licensed under CC-BY 4.0:
https://creativecommons.org/licenses/by/4.0/
Taken from the npm package `{TWEMOJI_NPM}` {twemoji_version} (packaging by Samuel Kopp, MIT).
What was done (changes made): each SVG (named by code point, e.g. `1f455.svg`) was rasterised
with `rsvg-convert` (librsvg) to a {TWEMOJI_WIDTH} px wide PNG with a transparent background;
the drawings themselves are unchanged. Same emoji as for Noto.

## Open Clip Art Library (public domain): `openclipart_*.png`

Drawings by the Open Clip Art Library artists named below, dedicated to the public domain
(Creative Commons Public Domain Dedication, comparable to CC0), from the Debian package
`{OPENCLIPART_PACKAGE}` (files under `{OPENCLIPART_DIR}`). Credit is given although not required.
What was done: copied as drawn (colour, transparency, page margins); drawings longer than
{MAX_SIDE} px on a side were downscaled to {MAX_SIDE} px (Lanczos).

{clipart_lines}

## Fashion-MNIST, re-presented (MIT): `shifted/`

{SHIFTED_PER_CLASS} test-set images per class of Fashion-MNIST (Copyright 2017 Zalando SE,
MIT licence, https://github.com/zalandoresearch/fashion-mnist), picked with
`numpy.random.default_rng({seed})` and rendered as listing photos by
`train.photo_style.render_listing_photo`, saved as JPEG quality {JPEG_QUALITY}.

## Regenerating

From the repository root, with the Debian packages `{NOTO_PACKAGE}`, `librsvg2-bin`,
`{OPENCLIPART_PACKAGE}` and `npm` installed (`apt-get install {NOTO_PACKAGE} librsvg2-bin
{OPENCLIPART_PACKAGE} npm`), the npm registry reachable (the script runs
`npm install --prefix <temporary folder> {TWEMOJI_NPM}` and deletes that folder afterwards), and
Fashion-MNIST installed for `shifted/`:

    python unseen/build.py --seed {seed}
"""


# --------------------------------------------------------------------------- main


def summary(label: str, rows: list[dict]) -> str:
    counts = Counter(r["class_index"] for r in rows)
    per_class = ", ".join(f"{CLASS_NAMES[k]} {counts.get(k, 0)}" for k in range(len(CLASS_NAMES)))
    return f"{label}: {len(rows)} images ({per_class})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate unseen/ (third-party clothing artwork and a shifted test set).")
    parser.add_argument("--seed", type=int, default=0, help="seed for picking and rendering shifted/ (default 0)")
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: the folder of this script)")
    parser.add_argument("--font", type=Path, default=NOTO_FONT, help=f"Noto Color Emoji font (default {NOTO_FONT})")
    parser.add_argument(
        "--openclipart-dir", type=Path, default=OPENCLIPART_DIR, help=f"openclipart-png folder (default {OPENCLIPART_DIR})"
    )
    parser.add_argument(
        "--twemoji-dir", type=Path, help=f"an installed {TWEMOJI_NPM} package folder to use instead of running npm"
    )
    parser.add_argument("--data-dir", help="Fashion-MNIST folder (default: where edge_infer.datasets looks)")
    parser.add_argument("--shifted-only", type=int, metavar="PER_CLASS",
                        help="build only a set like shifted/, with this many test images per class, into --out "
                             "itself (a larger set to measure with: --shifted-only 200 --seed 1 --out /tmp/listing2000)")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    if args.shifted_only is not None:
        if args.shifted_only < 1:
            parser.error("--shifted-only needs at least one image per class")
        if out == HERE or HERE in out.parents:
            parser.error("--shifted-only needs an --out outside unseen/ (it would replace the committed sets)")
        if out.is_dir() and any(out.iterdir()) and not (out / "labels.csv").is_file():
            parser.error(f"--out {out} has files but no labels.csv: give a new or empty folder (images would be pruned)")
    try:
        if args.shifted_only is not None:
            rows = build_shifted(out, args.seed, args.data_dir, args.shifted_only)
            print(summary(f"shifted (seed {args.seed})", rows), flush=True)
            return 0
        noto_rows = build_noto(out, args.font)
        print(summary("noto", noto_rows), flush=True)
        if args.twemoji_dir is not None:
            twemoji_rows, version = build_twemoji(out, args.twemoji_dir)
        else:
            with tempfile.TemporaryDirectory(prefix="twemoji-npm-") as tmp:
                twemoji_rows, version = build_twemoji(out, fetch_twemoji(Path(tmp)))
        print(summary("twemoji", twemoji_rows), flush=True)
        clipart_rows, credits = build_openclipart(out, args.openclipart_dir)
        print(summary("openclipart", clipart_rows), flush=True)
        write_labels(out / "labels.csv", noto_rows + twemoji_rows + clipart_rows)
        write_text(out / "ATTRIBUTION.md", attribution(version, credits, args.seed))
        shifted_rows = build_shifted(out / "shifted", args.seed, args.data_dir)
        print(summary(f"shifted (seed {args.seed})", shifted_rows), flush=True)
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
