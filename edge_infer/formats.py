"""Records to text: a readable table, CSV, JSON and JSON Lines. Pure functions returning str."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Sequence

FORMATS = ("table", "csv", "json", "jsonl")
CSV_FIELDS = ("path", "label", "class_index", "confidence", "best_label", "best_class_index")


def _top_k_text(top_k: list) -> str:
    return ", ".join(f"{label} {prob:.2f}" for label, prob in top_k)


def to_csv(records: Sequence[dict]) -> str:
    """One row per record; top-k as columns top1_label, top1_probability, top2_label, ...; empty
    cells where a value is missing (a failed file, an uncertain answer's class_index)."""
    k = max((len(r.get("top_k") or []) for r in records), default=0)
    buffer = io.StringIO()
    writer = csv_writer(buffer, k)
    writer.writeheader()
    writer.writerows(csv_row(record) for record in records)
    return buffer.getvalue()


def csv_writer(stream, k: int) -> csv.DictWriter:
    """A writer of `csv_row`s with columns for `k` ranked guesses (to stream rows batch by batch)."""
    ranked = [f"top{i}_{part}" for i in range(1, k + 1) for part in ("label", "probability")]
    return csv.DictWriter(stream, fieldnames=[*CSV_FIELDS, *ranked, "error"], extrasaction="ignore",
                          lineterminator="\n")


def csv_row(record: dict) -> dict:
    row = {key: ("" if record.get(key) is None else record[key]) for key in (*CSV_FIELDS, "error")}
    if record.get("confidence") is not None:
        row["confidence"] = f"{record['confidence']:.6f}"
    for i, (label, probability) in enumerate(record.get("top_k") or [], start=1):
        row[f"top{i}_label"], row[f"top{i}_probability"] = label, f"{probability:.6f}"
    return row


def to_json(records: Sequence[dict], summary: dict | None = None) -> str:
    return json.dumps({"results": list(records), "summary": summary or {}}, indent=2) + "\n"


def to_jsonl(records: Sequence[dict]) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


def render_table(rows: Sequence[Sequence[str]], header: Sequence[str], align_right: Sequence[int] = ()) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]

    def line(cells):
        parts = [
            str(cell).rjust(width) if i in align_right else str(cell).ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths))
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *[line(r) for r in rows]]) + "\n"


def to_table(records: Sequence[dict], summary: dict) -> str:
    rows = [
        [r["path"], "ERROR", "", r["error"]] if r.get("error")
        else [r["path"], r["label"], f"{r['confidence']:.3f}", _top_k_text(r["top_k"])]
        for r in records
    ]
    text = render_table(rows, ["file", "label", "confidence", "top-k / error"], align_right=[2])
    return text + "\n" + summary_table(summary)


def summary_table(summary: dict) -> str:
    """Images per label, then the totals: what a run found (`ClassifyResult.summary()`)."""
    counts = [[label, str(n)] for label, n in summary["per_label"].items()]
    text = render_table(counts, ["label", "images"], align_right=[1])
    text += (
        f"\n{summary['classified']} classified, {summary['failed']} failed, "
        f"{summary['skipped_non_images']} non-image files skipped\n"
    )
    for folder in summary.get("skipped_folders", []):
        text += f"{folder['path']}: {folder['images']} images not read (a sub-folder: use -r)\n"
    return text


def positive_integers(text: str, what: str, example: str) -> tuple[int, ...]:
    """"1,32,256" to (1, 32, 256); ValueError with a one-line reason otherwise."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"give comma-separated {what}, e.g. {example}") from None
    if min(values) < 1:
        raise ValueError(f"{what} must be at least 1")
    return values


def format_for(output: str | None) -> str:
    """The format an output file's extension asks for (out.csv, out.json, out.jsonl); table otherwise."""
    extension = (output or "").rsplit(".", 1)[-1].lower() if output and "." in output else ""
    return extension if extension in ("csv", "json", "jsonl") else "table"


def format_records(records: Sequence[dict], fmt: str, summary: dict) -> str:
    """Records (dicts) and the run's summary (`ClassifyResult.summary()`) as text in `fmt`."""
    if fmt == "table":
        return to_table(records, summary)
    if fmt == "csv":
        return to_csv(records)
    if fmt == "json":
        return to_json(records, summary)
    if fmt == "jsonl":
        return to_jsonl(records)
    raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")


def percent(value) -> str:
    """A fraction as a percentage with one decimal; '-' for missing or NaN."""
    return "-" if not isinstance(value, (int, float)) or math.isnan(value) else f"{100 * value:.1f}"


def variant(result: dict) -> str:
    """An evaluation result's precision, marked when predictions were mirror-averaged."""
    return result["precision"] + ("+mirror" if result.get("mirror_average") else "")


def _path_suffixes(results: Sequence[dict]) -> list[str]:
    """" (path)" for results that would otherwise read the same "model/precision" (a retrained
    variant beside the shipped model has the same model name), else ""."""
    plain = [f"{r['model']}/{variant(r)}" for r in results]
    return [f" ({r['path']})" if plain.count(label) > 1 and r.get("path") else ""
            for label, r in zip(plain, results)]


def p_value_text(p: float) -> str:
    """A p-value as people read it: three decimals, or "<0.001"."""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def evaluation_tables(results: Sequence[dict]) -> str:
    """Summary per model and precision, then corruption means, then per-class accuracy."""
    suffixes = _path_suffixes(results)
    labels = [f"{r['model']}/{variant(r)}{suffix}" for r, suffix in zip(results, suffixes)]
    folders = list(dict.fromkeys(f for r in results for f in r.get("folders", {})))
    header = ["model", "precision", "clean %", "ECE", "mCA %", "drop %", "mCA pre %"]
    for folder in folders:
        header += [f"{folder} %", "(plain)"]
    rows = []
    for r, suffix in zip(results, suffixes):
        clean = r.get("clean", {})
        suite = r.get("corruptions", {})
        row = [r["model"] + suffix, variant(r), percent(clean.get("accuracy")),
               f"{clean['ece']:.3f}" if "ece" in clean else "-",
               percent(suite.get("mean_corruption_accuracy")), percent(suite.get("relative_drop")),
               percent(r.get("corruptions_through_preprocessing", {}).get("mean_corruption_accuracy"))]
        for folder in folders:
            scores = r.get("folders", {}).get(folder, {})
            row += [percent(scores.get("robust", {}).get("accuracy")), percent(scores.get("plain", {}).get("accuracy"))]
        rows.append(row)
    text = render_table(rows, header, align_right=range(2, len(header)))
    text += _uncertainty_table(results, labels, folders)
    with_suite = [r for r in results if r.get("corruptions")]
    if with_suite:
        names = list(with_suite[0]["corruptions"]["mean_per_corruption"])
        suite_header = ["corruption"] + [label for r, label in zip(results, labels) if r.get("corruptions")]
        suite_rows = [[name] + [percent(r["corruptions"]["mean_per_corruption"].get(name)) for r in with_suite]
                      for name in names]
        pre = [r for r in with_suite if r.get("corruptions_through_preprocessing")]
        if pre:
            suite_header += [f"{label} pre" for r, label in zip(results, labels)
                             if r.get("corruptions") and r.get("corruptions_through_preprocessing")]
            for row, name in zip(suite_rows, names):
                row += [percent(r["corruptions_through_preprocessing"]["mean_per_corruption"].get(name)) for r in pre]
        images = with_suite[0]["corruptions"]["images"]
        text += f"\nAccuracy % per corruption (mean of severities 1-5, {images} test images)\n"
        text += render_table(suite_rows, suite_header, align_right=range(1, len(suite_header)))
    with_clean = [r for r in results if r.get("clean")]
    if with_clean:
        from .classes import CLASS_NAMES

        class_header = ["class"] + [label for r, label in zip(results, labels) if r.get("clean")]
        class_rows = [[name] + [percent(r["clean"]["per_class_accuracy"][i]) for r in with_clean]
                      for i, name in enumerate(CLASS_NAMES)]
        text += "\nClean test accuracy % per class\n"
        text += render_table(class_rows, class_header, align_right=range(1, len(class_header)))
    return text


def interval_text(scores: dict) -> str:
    """A scores dict's 95 % accuracy interval as "69.9-91.1" (percent), or "-" when it has none."""
    bounds = scores.get("accuracy_interval")
    return f"{percent(bounds[0])}-{percent(bounds[1])}" if bounds else "-"


def _uncertainty_table(results: Sequence[dict], labels: list[str], folders: list[str]) -> str:
    """How far each accuracy can be trusted: its 95 % interval, and each model against its reference."""
    rows = []
    for r, label in zip(results, labels):
        compared = r.get("compared_with", {})
        reference = labels[compared["reference_index"]] if compared else ""
        scored = [("test set", r.get("clean"), compared.get("clean"))] + [
            (folder, r.get("folders", {}).get(folder, {}).get("robust"),
             compared.get("folders", {}).get(folder, {}).get("robust")) for folder in folders]
        for name, scores, paired in scored:
            if not scores:
                continue
            rows.append([label, name, str(scores.get("images", "-")), percent(scores.get("accuracy")),
                         interval_text(scores), reference if paired else "",
                         f"+{paired['only_this']} / -{paired['only_reference']}" if paired else "",
                         p_value_text(paired["p_value"]) if paired else ""])
    if not rows:
        return ""
    compared = len(results) > 1
    header = ["model", "scored on", "n", "accuracy %", "95 % interval"] + (
        ["against", "right only here / only there", "p"] if compared else [])
    note = ("\nAgainst the first model at the same precision (or the first of all), on the same images: if both "
            "were equally accurate,\np is the chance of a split at least this uneven (below 0.05: probably a real "
            "difference; with many rows, expect a few low p by chance)." if compared else "")
    return (f"\nHow sure: 95 % interval of each accuracy (Wilson; folders with robust preprocessing).{note}\n"
            + render_table([row[:len(header)] for row in rows], header, align_right=range(2, 5)))


def benchmark_tables(result: dict) -> str:
    m = result["machine"]
    text = (f"{m['cpu']}, {m['logical_cores']} logical cores ({', '.join(m['instruction_sets']) or 'no SIMD flags read'}), "
            f"onnxruntime {m['onnxruntime']}, {result['settings']['threads']} intra-op thread(s)\n\n")
    sizes = result["settings"]["batch_sizes"]
    header = ["model", "precision", "size KiB", "acc %", "p50 us", "p99 us", "create ms", "1st ms"] + \
        [f"b{b} img/s" for b in sizes]
    rows = []
    for r in result["models"]:
        lat = r["latency_us"]
        rows.append([r["model"], r["precision"], f"{r['bytes'] / 1024:.0f}",
                     percent(r.get("test_accuracy")), f"{lat['p50']:.1f}", f"{lat['p99']:.1f}",
                     f"{r['session_create_ms']:.1f}", f"{r['first_inference_ms']:.2f}"] +
                    [f"{r['throughput_images_per_s'][str(b)]:,.0f}" for b in sizes])
    text += render_table(rows, header, align_right=range(2, len(header)))
    if result.get("end_to_end"):
        rows = [[", ".join(e["inputs"]), str(e["images"]), f"{e['images_per_s']:,.0f}",
                 f"{e['single_thread_ms_per_image']['decode']:.3f}",
                 f"{e['single_thread_ms_per_image']['preprocess']:.3f}",
                 f"{e['single_thread_ms_per_image']['inference']:.3f}"] for e in result["end_to_end"]]
        text += "\nEnd to end (decode + preprocess + infer; split measured single-threaded, ms per image)\n"
        text += render_table(rows, ["folder", "images", "img/s", "decode", "preprocess", "infer"],
                             align_right=range(1, 6))
        graphs = [e for e in result["end_to_end"] if e.get("one_file")]
        if graphs:
            rows = [[", ".join(e["inputs"]), e["one_file"]["file"], str(e["one_file"]["images"]),
                     f"{e['one_file']['decode_rgba_ms']:.3f}", f"{e['one_file']['graph_ms']['p50']:.3f}",
                     f"{e['one_file']['graph_ms']['p90']:.3f}",
                     f"{e['single_thread_ms_per_image']['preprocess'] + e['single_thread_ms_per_image']['inference']:.3f}"]
                    for e in graphs]
            text += ("\nOne model file (preprocessing inside the graph), one image at a time, one thread, ms\n")
            text += render_table(rows, ["folder", "file", "images", "decode+RGBA", "graph p50", "graph p90",
                                        "Python preprocess+infer"], align_right=range(2, 7))
    return text


def description_table(description: dict) -> str:
    """`edge-infer info` as two columns: key and value (nested values as compact JSON)."""
    rows = [["path", description["path"]]]
    for kind in ("inputs", "outputs"):
        for port in description[kind]:
            rows.append([kind[:-1], f"{port['name']} {port['type']} {port['shape']}"])
    for key, value in sorted(description["metadata"].items()):
        text = value if isinstance(value, str) else json.dumps(value)
        rows.append([key, text if len(text) <= 100 else text[:99] + "…"])
    rows += [["warning", message] for message in description["warnings"]]
    return render_table(rows, ["key", "value"])
