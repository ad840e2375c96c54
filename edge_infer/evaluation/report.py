"""One self-contained HTML page about the models: a summary table, training curves, accuracy
under corruption, confusion matrices and a gallery of labelled photos with their predictions.

Needs the `report` extra (matplotlib). matplotlib is imported only when a chart is drawn, so
importing this module stays light; charts are drawn on Agg canvases (no pyplot, no global
figure registry, nothing to leak). Every image is embedded as a base64 PNG data URI and every
text value goes through `html.escape`. Library functions return data; `cli.py` prints.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
import math
import platform
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..classes import CLASS_NAMES
from ..formats import interval_text, percent, variant
from ..files import ImageError, open_image
from ..preprocess import flatten_on_white, normalise_mode
from ..runtime import DEFAULT_MODEL, load_manifest

GALLERY_LIMIT = 300  # images shown per labelled folder; more are sampled evenly
THUMBNAIL_SIZE = 96
SEVERITIES = ("1", "2", "3", "4", "5")
INSTALL_HINT = "edge-infer report needs matplotlib: pip install 'edge-infer[report]'"
e = html.escape  # every text value that goes into the page


class ReportError(Exception):
    """An input of the report is missing or malformed, or matplotlib is not installed."""


@dataclass
class TrainingRuns:
    """runs/<name>/history.json files that could be read, and the ones that could not."""

    folder: str
    histories: dict[str, dict] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- inputs


def _read_json(path: str | Path, what: str):
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"{path}: no such {what} file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: cannot read the {what} file ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None


def check_evaluation(evaluation, name: str = "evaluation") -> dict:
    """The JSON of `edge-infer evaluate --format json`: {"results": [{model, precision, ...}]}."""
    results = evaluation.get("results") if isinstance(evaluation, dict) else None
    if not isinstance(results, list) or not results:
        raise ReportError(f"{name}: not an edge-infer evaluation (expected a non-empty \"results\" list "
                          "as written by `edge-infer evaluate --format json`)")
    for i, result in enumerate(results):
        if not (isinstance(result, dict) and isinstance(result.get("model"), str)
                and isinstance(result.get("precision"), str)):
            raise ReportError(f"{name}: results[{i}] has no \"model\" and \"precision\"")
    return evaluation


def load_evaluation(path: str | Path) -> dict:
    return check_evaluation(_read_json(path, "evaluation"), str(path))


def load_latencies(path: str | Path) -> dict[tuple[str, str], float]:
    """p50 latency (microseconds) per (model, precision) from a benchmark JSON:
    {"models": [{"model", "precision", "latency_us": {"p50": ...}}]}. Other shapes give {}."""
    data = _read_json(path, "benchmark")
    latencies = {}
    for entry in data.get("models", []) if isinstance(data, dict) else []:
        if not isinstance(entry, dict):
            continue
        p50 = (entry.get("latency_us") or {}).get("p50") if isinstance(entry.get("latency_us"), dict) else None
        if isinstance(p50, (int, float)) and isinstance(entry.get("model"), str):
            latencies[(entry["model"], str(entry.get("precision", "fp32")))] = float(p50)
    return latencies


def load_runs(folder: str | Path) -> TrainingRuns:
    """Every <folder>/<name>/history.json (keys such as loss, accuracy, val_loss, val_accuracy)."""
    runs = TrainingRuns(str(folder))
    for path in sorted(Path(folder).glob("*/history.json")):
        try:
            history = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            runs.problems.append(f"{path}: unreadable ({exc})")
            continue
        if not isinstance(history, dict) or not any(isinstance(v, list) and v for v in history.values()):
            runs.problems.append(f"{path}: no per-epoch lists")
            continue
        runs.histories[path.parent.name] = history
    return runs


def describe_file(path: str | Path) -> str:
    """'PATH (written YYYY-MM-DD HH:MM UTC)' for the header."""
    try:
        written = datetime.datetime.fromtimestamp(Path(path).stat().st_mtime, datetime.timezone.utc)
    except OSError:
        return str(path)
    return f"{path} (written {written:%Y-%m-%d %H:%M} UTC)"


# ---------------------------------------------------------------- charts


def require_matplotlib() -> None:
    """Raise ReportError with the install hint when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ReportError(INSTALL_HINT) from None


def _figure(width: float, height: float):
    """A matplotlib Figure on an Agg canvas (not registered with pyplot)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ReportError(INSTALL_HINT) from None
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _epoch_axis(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    fig.clear()
    return buffer.getvalue()


def _style(results: list[dict]) -> dict[tuple[str, str], dict]:
    """One colour per model, one line style per precision, for every chart."""
    colours = {}
    for r in results:
        colours.setdefault(r["model"], f"C{len(colours) % 10}")
    dashes = {"fp32": "-", "int8": "--"}
    return {(r["model"], r["precision"]): {"color": colours[r["model"]],
                                           "linestyle": dashes.get(r["precision"], ":")}
            for r in results}


def training_curves_png(name: str, history: dict) -> bytes:
    """Accuracy and loss (training and validation) per epoch, and the learning rate if logged."""
    panels = [("accuracy", ("accuracy", "val_accuracy")), ("loss", ("loss", "val_loss"))]
    if history.get("learning_rate"):
        panels.append(("learning rate", ("learning_rate",)))
    fig = _figure(3.6 * len(panels), 2.8)
    for ax, (title, keys) in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels):
        for key in keys:
            values = history.get(key) or []
            ax.plot(range(1, len(values) + 1), values, "--" if key.startswith("val_") else "-",
                    label="validation" if key.startswith("val_") else "training")
        ax.set_title(f"{name}: {title}")
        _epoch_axis(ax)
        if len(keys) > 1:
            ax.legend(fontsize=8)
    return _png(fig)


def comparison_png(histories: dict[str, dict]) -> bytes:
    """The study's chart: every model's validation accuracy and loss per epoch."""
    fig = _figure(10, 3.6)
    ax_acc, ax_loss = fig.subplots(1, 2)
    for name, history in histories.items():
        for ax, key in ((ax_acc, "val_accuracy"), (ax_loss, "val_loss")):
            values = history.get(key) or []
            ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=name)
    ax_acc.set_title("validation accuracy")
    ax_loss.set_title("validation loss")
    for ax in (ax_acc, ax_loss):
        _epoch_axis(ax)
        ax.legend(fontsize=8)
    return _png(fig)


def severity_grid_png(results: list[dict]) -> bytes:
    """One small chart per corruption: accuracy against severity 1-5, a line per model/precision."""
    names = list(dict.fromkeys(n for r in results for n in r["corruptions"]["accuracy"]))
    columns = min(6, len(names))
    rows = math.ceil(len(names) / columns)
    fig = _figure(2.0 * columns, 1.75 * rows + 0.5)
    axes = fig.subplots(rows, columns, sharex=True, sharey=True, squeeze=False).ravel()
    styles = _style(results)
    for ax, name in zip(axes, names):
        for r in results:
            row = r["corruptions"]["accuracy"].get(name, {})
            points = [(int(s), row[s]) for s in SEVERITIES if row.get(s) is not None]
            if points:
                ax.plot(*zip(*points), marker="o", markersize=2.5, linewidth=1.2,
                        label=_label(r), **styles[(r["model"], r["precision"])])
        ax.set_title(name.replace("_", " "), fontsize=9)
        ax.set_ylim(0, 1)
        ax.set_xticks(range(1, 6))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=min(len(labels), 6), fontsize=8)
    fig.supxlabel("severity", fontsize=9)
    fig.supylabel("accuracy", fontsize=9)
    return _png(fig)


def confusion_png(matrix: list[list[int]], title: str) -> bytes:
    """Counts written in the cells, coloured by the share of each true class (row)."""
    counts = np.asarray(matrix, dtype=np.int64)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    names = CLASS_NAMES if len(counts) == len(CLASS_NAMES) else [str(i) for i in range(len(counts))]
    fig = _figure(5.4, 4.8)
    ax = fig.subplots()
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(counts):
        if count:
            ax.text(j, i, str(count), ha="center", va="center", fontsize=6.5,
                    color="white" if shares[i, j] > 0.55 else "black")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7.5)
    ax.set_yticks(range(len(names)), names, fontsize=7.5)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    ax.title.set_fontsize(9)
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of true class")
    return _png(fig)


def thumbnail_png(path: str | Path, size: int = THUMBNAIL_SIZE) -> tuple[bytes, tuple[int, int]]:
    """The original photo, upright, flattened onto white, at most size x size. Raises ImageError."""
    image = flatten_on_white(normalise_mode(open_image(path, draft_size=size)))
    image.thumbnail((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue(), image.size


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _img(png: bytes, alt: str, css: str = "") -> str:
    return f'<img class="{css}" src="{data_uri(png)}" alt="{e(alt)}">'


# ---------------------------------------------------------------- sections (HTML strings)


def _size(n) -> str:
    if not isinstance(n, (int, float)):
        return "-"
    return f"{n / 1024:.0f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MiB"


def _count(n) -> str:
    return f"{n:,}" if isinstance(n, (int, float)) else "-"


def _label(r: dict) -> str:
    return f"{r['model']}/{variant(r)}"


def _note(text: str) -> str:
    return f'<p class="note">{e(text)}</p>'


def _class_name(index) -> str:
    return CLASS_NAMES[index] if isinstance(index, int) and 0 <= index < len(CLASS_NAMES) else str(index)


def header_section(results: list[dict], source: str, now: datetime.datetime) -> str:
    import onnxruntime

    from .. import __version__

    with_clean = [r for r in results if r.get("clean")]
    suites = [r["corruptions"] for r in results if r.get("corruptions")]
    folders = {}
    for r in results:
        for folder, scores in (r.get("folders") or {}).items():
            folders.setdefault(folder, (scores.get("robust") or {}).get("images"))
    items = [f"<li>Models: {e(', '.join(_label(r) for r in results))}</li>"]
    if with_clean:
        items.append(f"<li>Clean test set: {_count(with_clean[0]['clean'].get('images'))} images</li>")
    if suites:
        names = list(suites[0].get("accuracy", {}))
        items.append(f"<li>Corruption suite: {len(names)} corruptions &times; severities 1&ndash;5 on "
                     f"{_count(suites[0].get('images'))} test images (seed {e(str(suites[0].get('seed', '-')))})</li>")
    for folder, images in folders.items():
        items.append(f"<li>Labelled folder <code>{e(folder)}</code>: {_count(images)} images</li>")
    return f"""<header id="summary">
<h1>edge-infer report</h1>
<p>Generated {now:%Y-%m-%d %H:%M} UTC with edge-infer {e(__version__)}, onnxruntime {e(onnxruntime.__version__)},
Python {e(platform.python_version())}. Evaluation: {e(source)}.</p>
<ul>{''.join(items)}</ul>
<nav>Sections: <a href="#models">models</a> &middot; <a href="#training">training</a> &middot;
<a href="#corruptions">corruptions</a> &middot; <a href="#confusion">confusion matrices</a> &middot;
<a href="#gallery">gallery</a></nav>
</header>"""


def models_section(results: list[dict], manifest: dict, latencies: dict | None) -> str:
    entries = {(m.get("name"), m.get("precision")): m for m in manifest.get("models", [])}
    folders = list(dict.fromkeys(f for r in results for f in (r.get("folders") or {})))
    show_latency = bool(latencies)
    head_1 = ('<th rowspan="2">model</th><th rowspan="2">precision</th><th rowspan="2">params</th>'
              '<th rowspan="2">MACs / image</th><th rowspan="2">file size</th><th rowspan="2">clean acc %</th>'
              '<th rowspan="2">ECE</th><th rowspan="2">mean corruption acc %</th>')
    head_1 += "".join(f'<th colspan="2" title="{e(folder)}"><code>{e(Path(folder).name or folder)}</code> acc %</th>'
                      for folder in folders)
    head_1 += '<th rowspan="2">p50 latency</th>' if show_latency else ""
    head_2 = "<th>robust</th><th>plain</th>" * len(folders)
    rows = []
    for r in results:
        entry = entries.get((r["model"], r["precision"]), {})
        clean = r.get("clean") or {}
        suite = r.get("corruptions") or {}
        size = entry.get("bytes")
        if size is None and r.get("path") and Path(r["path"]).is_file():
            size = Path(r["path"]).stat().st_size
        ece = clean.get("ece")
        cells = [e(r["model"]), e(variant(r)), _count(entry.get("params", r.get("params"))),
                 _count(entry.get("macs_per_image")), _size(size), percent(clean.get("accuracy")),
                 "-" if not isinstance(ece, (int, float)) or math.isnan(ece) else f"{ece:.3f}",
                 percent(suite.get("mean_corruption_accuracy"))]
        for folder in folders:
            scores = (r.get("folders") or {}).get(folder) or {}
            robust = scores.get("robust") or {}
            cells += [f'<span title="{e(_interval_title(robust))}">{percent(robust.get("accuracy"))}</span>',
                      f'<span class="muted">{percent((scores.get("plain") or {}).get("accuracy"))}</span>']
        if show_latency:
            p50 = latencies.get((r["model"], r["precision"]))
            cells.append("-" if p50 is None else f"{p50:,.0f} &micro;s")
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    notes = ""
    if latencies is not None and not latencies:
        notes = _note("The benchmark file has no entries with latency_us.p50; latency is not shown.")
    return f"""<section id="models">
<h2>Models</h2>
<table class="models"><thead><tr>{head_1}</tr><tr>{head_2}</tr></thead>
<tbody>{''.join(rows)}</tbody></table>
<p class="note">Params, MACs and file size from the shipped manifest. ECE: expected calibration error on
the clean test set (lower is better). Folder accuracy with robust preprocessing, the study's plain
squash beside it in grey; hover a folder's accuracy for its 95 % interval (Wilson): a folder of 47
images cannot tell 83 % from 77 %.</p>{notes}
</section>"""


def _interval_title(scores: dict) -> str:
    if not scores.get("accuracy_interval"):
        return ""
    return f"95 % interval {interval_text(scores)} % of {scores.get('images', '?')} images"


def training_section(runs: TrainingRuns | None) -> str:
    if runs is None:
        body = _note("No training runs given (use --runs DIR with DIR/<model>/history.json).")
    elif not runs.histories:
        body = _note(f"No readable history.json under {runs.folder}.")
    else:
        body = (f"<h3>All models: validation accuracy and loss per epoch</h3>"
                f"{_img(comparison_png(runs.histories), 'validation accuracy and loss of every model', 'chart')}")
        for name, history in runs.histories.items():
            chart = _img(training_curves_png(name, history), f"training curves of {name}", "chart")
            body += f"<h3>{e(name)}</h3>{chart}"
    if runs is not None:
        body += "".join(_note(problem) for problem in runs.problems)
    return f'<section id="training">\n<h2>Training curves</h2>\n{body}\n</section>'


def corruption_section(results: list[dict]) -> str:
    with_suite = [r for r in results if (r.get("corruptions") or {}).get("accuracy")]
    if not with_suite:
        body = _note("The evaluation has no corruption suite (it ran without the test set or with "
                     "--corruption-images 0).")
    else:
        body = (f"<p>Accuracy on {_count(with_suite[0]['corruptions'].get('images'))} test images per corruption "
                f"and severity; solid lines fp32, dashed int8.</p>"
                f"{_img(severity_grid_png(with_suite), 'accuracy against severity per corruption', 'chart')}")
    return f'<section id="corruptions">\n<h2>Accuracy under corruption</h2>\n{body}\n</section>'


def _confusion_figure(r: dict) -> str:
    title = f"{_label(r)}: clean accuracy {percent(r['clean'].get('accuracy'))}%"
    chart = _img(confusion_png(r["clean"]["confusion_matrix"], title), f"confusion matrix of {_label(r)}", "chart")
    return f"<figure>{chart}</figure>"


def confusion_section(results: list[dict]) -> str:
    with_clean = [r for r in results if (r.get("clean") or {}).get("confusion_matrix")]
    if not with_clean:
        return ('<section id="confusion">\n<h2>Confusion matrices</h2>\n'
                f'{_note("The evaluation has no clean test-set scores.")}\n</section>')
    figures = "".join(_confusion_figure(r) for r in with_clean)
    return f"""<section id="confusion">
<h2>Confusion matrices (clean test set)</h2>
<p>Rows are the true class, columns the prediction; colour is the share of the true class.</p>
<div class="grid">{figures}</div>
</section>"""


def gallery_result(results: list[dict]) -> dict | None:
    """The default model at fp32 when evaluated on folders, else the first result with folders."""
    with_folders = [r for r in results if r.get("folders")]
    for r in with_folders:
        if r["model"] == DEFAULT_MODEL and r["precision"] == "fp32":
            return r
    return with_folders[0] if with_folders else None


def _sample(items: list, limit: int) -> list:
    if len(items) <= limit:
        return items
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, limit).round()]


def _tile(root: Path, prediction: dict) -> tuple[str, bool]:
    """(HTML of one gallery tile, whether the original image was found and decoded)."""
    path, label, predicted = prediction.get("path", ""), prediction.get("label"), prediction.get("predicted")
    wrong = predicted != label
    try:
        png, (width, height) = thumbnail_png(root / path)
        picture = f'<img src="{data_uri(png)}" width="{width}" height="{height}" alt="{e(path)}">'
        found = True
    except ImageError as exc:
        picture = f'<div class="missing">{e(str(exc))}</div>'
        found = False
    confidence = prediction.get("confidence")
    caption = f"<b>{e(_class_name(predicted))}</b>"
    caption += f" {100 * confidence:.0f}%" if isinstance(confidence, (int, float)) else ""
    if wrong:
        caption += f'<br><span class="truth">true: {e(_class_name(label))}</span>'
    css = "tile wrong" if wrong else "tile right"
    return f'<figure class="{css}" title="{e(path)}">{picture}<figcaption>{caption}</figcaption></figure>', found


def folder_gallery(folder: str, scores: dict, limit: int = GALLERY_LIMIT) -> str:
    predictions = scores.get("predictions") or []
    errors = scores.get("errors") or []
    shown = _sample(predictions, limit)
    tiles, missing = [], 0
    for prediction in shown:
        tile, found = _tile(Path(folder), prediction)
        tiles.append(tile)
        missing += not found
    for error in errors[:limit]:
        tiles.append(f'<figure class="tile wrong" title="{e(str(error.get("path", "")))}">'
                     f'<div class="missing">{e(str(error.get("error", "unreadable")))}</div>'
                     f'<figcaption><b>unreadable</b><br><span class="truth">{e(str(error.get("path", "")))}'
                     f"</span></figcaption></figure>")
    wrong = sum(p.get("predicted") != p.get("label") for p in predictions)
    summary = (f"{len(predictions) + len(errors)} images, {wrong} predicted wrong, {len(errors)} unreadable; "
               f"accuracy {percent(scores.get('accuracy'))}%.")
    if len(shown) < len(predictions):
        summary += f" Showing {len(shown)} of {len(predictions)}, sampled evenly."
    if missing:
        summary += f" {missing} original files were not found or not readable now (paths are relative to the folder)."
    return (f"<h3><code>{e(folder)}</code></h3><p>{e(summary)}</p>"
            f'<div class="gallery">{"".join(tiles)}</div>')


def gallery_section(results: list[dict], limit: int = GALLERY_LIMIT) -> str:
    chosen = gallery_result(results)
    if chosen is None:
        return ('<section id="gallery">\n<h2>Labelled folders</h2>\n'
                f'{_note("The evaluation has no labelled folders.")}\n</section>')
    galleries = "".join(folder_gallery(folder, scores.get("robust") or {}, limit)
                        for folder, scores in chosen["folders"].items())
    return f"""<section id="gallery">
<h2>Labelled folders: predictions of {e(_label(chosen))}</h2>
<p>Robust preprocessing. Each photo with the predicted class and confidence; wrong predictions have a
red border and the true class.</p>
<input type="checkbox" id="only-wrong"><label for="only-wrong"> show only wrong predictions</label>
{galleries}
</section>"""


# ---------------------------------------------------------------- the page

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       margin: 1.5em auto; max-width: 1200px; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
code { font-size: 0.92em; } .note { color: #555; font-size: 0.9em; } .muted { color: #888; }
table.models { border-collapse: collapse; font-size: 0.9em; }
table.models th, table.models td { border: 1px solid #ddd; padding: 0.3em 0.6em; text-align: right;
                                   white-space: nowrap; }
table.models th { background: #f3f3f3; text-align: center; }
table.models td:nth-child(-n+2) { text-align: left; }
img.chart { max-width: 100%; height: auto; }
.grid { display: flex; flex-wrap: wrap; gap: 1em; } .grid figure { margin: 0; }
.gallery { display: flex; flex-wrap: wrap; gap: 6px; }
.tile { margin: 0; width: 108px; border: 3px solid #cfe8cf; border-radius: 4px; padding: 3px;
        font-size: 11px; text-align: center; background: #fff; }
.tile img, .tile .missing { display: block; margin: 0 auto; width: 96px; height: 96px; object-fit: contain; }
.tile .missing { width: 96px; height: 96px; background: #eee; color: #a00; font-size: 10px;
                 overflow: hidden; display: flex; align-items: center; justify-content: center; }
.tile.wrong { border-color: #d00; background: #fff3f3; } .truth { color: #d00; }
figcaption { word-wrap: break-word; }
#only-wrong:checked ~ .gallery .tile.right { display: none; }
"""

# Tells a browser test (and a curious reader) that every embedded image decoded.
CHECK_IMAGES = """
window.addEventListener("load", function () {
  var images = document.images, loaded = 0;
  for (var i = 0; i < images.length; i++) {
    if (images[i].complete && images[i].naturalWidth > 0) loaded++;
  }
  document.body.dataset.imagesTotal = images.length;
  document.body.dataset.imagesLoaded = loaded;
});
"""


def build_report(evaluation: dict, runs: TrainingRuns | None = None, latencies: dict | None = None,
                 source: str = "", manifest: dict | None = None, gallery_limit: int = GALLERY_LIMIT,
                 now: datetime.datetime | None = None) -> str:
    """The whole page as one string. `latencies` from `load_latencies`, `runs` from `load_runs`."""
    results = check_evaluation(evaluation)["results"]
    manifest = load_manifest() if manifest is None else manifest
    now = now or datetime.datetime.now(datetime.timezone.utc)
    require_matplotlib()
    sections = []
    for name, make in (("header", lambda: header_section(results, source or "given as data", now)),
                       ("models", lambda: models_section(results, manifest, latencies)),
                       ("training", lambda: training_section(runs)),
                       ("corruptions", lambda: corruption_section(results)),
                       ("confusion", lambda: confusion_section(results)),
                       ("gallery", lambda: gallery_section(results, gallery_limit))):
        try:
            sections.append(make())
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise ReportError(f"the evaluation is malformed ({name} section: {type(exc).__name__}: {exc})") from exc
    body = "\n".join(sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edge-infer report {now:%Y-%m-%d %H:%M}</title>
<style>{STYLE}</style>
</head>
<body>
{body}
<script>{CHECK_IMAGES}</script>
</body>
</html>
"""
