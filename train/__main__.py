"""python -m train --model NAME|all [--epochs N] [--seed S] [--data-dir D] [--out DIR] [--resume]"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge_infer.classes import CLASS_NAMES
from edge_infer.datasets import DatasetError
from edge_infer.formats import positive_integers


def _widths(text: str) -> tuple[int, ...]:
    try:
        return positive_integers(text, "channel counts", "40,80,112")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _classes(text: str) -> tuple[int, ...]:
    """"0,1,Dress" to (0, 1, 3): class indices or names (any case), comma-separated."""
    by_name = {name.lower(): index for index, name in enumerate(CLASS_NAMES)}
    indices = []
    for part in (part.strip() for part in text.split(",")):
        if part.isdigit() and int(part) < len(CLASS_NAMES):
            indices.append(int(part))
        elif part.lower() in by_name:
            indices.append(by_name[part.lower()])
        else:
            raise argparse.ArgumentTypeError(
                f"{part!r} is not a class: give indices 0-{len(CLASS_NAMES) - 1} or names, e.g. 0,1,Dress")
    return tuple(sorted(set(indices)))


def main(argv=None) -> int:
    from .models import REGISTRY
    from .registry import BLOCKS

    parser = argparse.ArgumentParser(prog="python -m train", description=__doc__)
    parser.add_argument("--model", required=True, choices=[*REGISTRY, "all"])
    parser.add_argument("--epochs", type=int, help="override the recipe's epoch count")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", help="folder with the four Fashion-MNIST *-ubyte.gz files")
    parser.add_argument("--out", help="output folder (default runs/NAME; with 'all', the parent)")
    parser.add_argument("--limit", type=int, help="use only the first N images (smoke tests)")
    parser.add_argument("--no-download", action="store_true", help="never fetch the dataset")
    parser.add_argument("--augment", choices=["none", "basic", "photo"],
                        help="override the recipe's augmentation (ablations)")
    parser.add_argument("--vertical-flip", action="store_true", help="add the study's vertical flips (ablations)")
    parser.add_argument("--final-augment-strength", type=float,
                        help="override the strength augmentation eases to over the last 30%% of epochs")
    parser.add_argument("--heavy-fraction", type=float,
                        help="override the share of images that get the full photo-style augmentation")
    parser.add_argument("--corruption-mix", type=float, metavar="P",
                        help="override the share of heavy images given an AugMix-style corruption mixture")
    parser.add_argument("--corruption-mix-classes", type=_classes, metavar="CLASSES",
                        help="give corruption mixtures only to these classes (indices or names, e.g. 0,1,2,3,4,6)")
    parser.add_argument("--footwear-pairs", type=float, metavar="P",
                        help="photograph this share of the shoes as pairs (side by side, often from above) "
                             "in the photo round trip")
    parser.add_argument("--photos", metavar="DIR|NPZ|pool|none",
                        help="labelled real photos to mix into training: a folder with labels.csv "
                             "(file,class_index), a pool .npz, 'pool' (the shipped phone-photo pool) or 'none'")
    parser.add_argument("--photos-fraction", type=float, metavar="F",
                        help="use the photos of this share of the photographers (learning curves)")
    parser.add_argument("--widths", type=_widths, help="robust only: channels per stage, e.g. 40,80,112")
    parser.add_argument("--block", choices=BLOCKS,
                        help="robust only: Conv-BN-ReLU blocks (default) or depthwise-separable ones")
    parser.add_argument("--teacher", action="append", metavar="RUN|FILE|NAME",
                        help="distil: mix this trained model's answers into the targets (a run folder, a .keras or "
                             ".onnx file, or a shipped model's name; repeat for an ensemble)")
    parser.add_argument("--teacher-weight", type=float, metavar="W",
                        help="the teachers' share of each target (default 0.7)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the stopped run in --out from its last finished epoch (give the "
                             "options it was started with)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    if args.resume and args.model == "all":
        parser.error("--resume continues one model's run, not 'all'")

    from .checkpoint import ResumeError, refuse_unfinished
    from .fit import train_model
    from .distill import TeacherError
    from .photo_pool import PhotosError

    overrides = {}
    if args.augment:
        overrides["augment"] = args.augment
    if args.vertical_flip:
        overrides["vertical_flip"] = True
    if args.final_augment_strength is not None:
        overrides["final_augment_strength"] = args.final_augment_strength
    if args.widths:
        if args.model != "robust":
            parser.error("--widths applies to the robust model only")
        overrides["widths"] = args.widths
    if args.block:
        if args.model != "robust":
            parser.error("--block applies to the robust model only")
        overrides["block"] = args.block
    if args.heavy_fraction is not None:
        if not 0.0 <= args.heavy_fraction <= 1.0:
            parser.error("--heavy-fraction must be between 0 and 1")
        overrides["heavy_fraction"] = args.heavy_fraction
    if args.corruption_mix is not None:
        if not 0.0 <= args.corruption_mix <= 1.0:
            parser.error("--corruption-mix must be between 0 and 1")
        overrides["corruption_mix"] = args.corruption_mix
    if args.corruption_mix_classes is not None:
        recipe_mix = 0.0 if args.model == "all" else REGISTRY[args.model].recipe.corruption_mix
        if not overrides.get("corruption_mix", recipe_mix):
            parser.error("--corruption-mix-classes needs corruption mixing: give --corruption-mix P too")
        overrides["corruption_mix_classes"] = args.corruption_mix_classes
    if args.footwear_pairs is not None:
        if not 0.0 <= args.footwear_pairs <= 1.0:
            parser.error("--footwear-pairs must be between 0 and 1")
        if args.model == "all":
            parser.error("--footwear-pairs applies to one model, not 'all'")
        if args.footwear_pairs > 0 and (args.augment or REGISTRY[args.model].recipe.augment) != "photo":
            parser.error("--footwear-pairs needs the photo round trip: a model trained with --augment photo")
        overrides["footwear_pairs"] = args.footwear_pairs
    if args.photos_fraction is not None:
        if not 0.0 < args.photos_fraction <= 1.0:
            parser.error("--photos-fraction must be above 0 and at most 1")
        overrides["photos_fraction"] = args.photos_fraction
    if args.teacher_weight is not None:
        if not args.teacher:
            parser.error("--teacher-weight needs --teacher")
        if not 0.0 < args.teacher_weight <= 1.0:
            parser.error("--teacher-weight must be above 0 and at most 1")
        overrides["teacher_weight"] = args.teacher_weight
    if args.teacher:
        if args.model == "all":
            parser.error("--teacher applies to one model, not 'all'")
        overrides["teachers"] = tuple(args.teacher)
    if args.photos:
        overrides["photos"] = None if args.photos == "none" else args.photos
    names = list(REGISTRY) if args.model == "all" else [args.model]
    root = Path(args.out) if (args.out and args.model == "all") else Path("runs")
    outs = {name: Path(args.out) if (args.out and args.model != "all") else root / name for name in names}
    if not args.resume:
        try:  # every folder before the first model trains: 'all' must not stop half-way
            for out in outs.values():
                refuse_unfinished(out)
        except ResumeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    histories = {}
    for name, out in outs.items():
        try:
            train_model(name, out, epochs=args.epochs, seed=args.seed, data_dir=args.data_dir,
                        limit=args.limit, verbose=0 if args.quiet else 2,
                        allow_download=not args.no_download, resume=args.resume, **overrides)
        except (DatasetError, PhotosError, TeacherError, ResumeError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        histories[name] = json.loads((out / "history.json").read_text())
    if len(histories) > 1:
        try:
            from .plots import plot_comparison

            plot_comparison(histories, root / "comparison.png")
        except ImportError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
