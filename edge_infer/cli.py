"""The `edge-infer` command line: a thin layer that parses options, calls the library, prints.

Exit codes: 0 all inputs classified; 1 some (or all) inputs failed (each reported on stderr and
in the output); 2 usage error or nothing usable (no model, no images found); 130 interrupted.
"""

from __future__ import annotations

import json
import os
import sys

import click

from . import formats
from .runtime import DEFAULT_MODEL, PRECISIONS, ModelError, preferred_precision

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def fail(message: str) -> None:
    click.echo(f"edge-infer: error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def warn(message: str) -> None:
    click.echo(f"edge-infer: warning: {message}", err=True)


def warn_about(info) -> None:
    for message in info.warnings:
        warn(message)


def emit(text: str, output: str | None) -> None:
    """To stdout, or to a file written atomically."""
    if output:
        from .files import write_atomic

        try:
            write_atomic(output, text)
        except OSError as exc:
            fail(f"{output}: cannot write ({exc.strerror or exc})")
    else:
        click.echo(text, nl=False)


model_option = click.option("--model", "-m", default=DEFAULT_MODEL, show_default=True,
                            help="shipped model name or path to an ONNX file")
PRECISION_HELP = "default: the model's preferred precision (`edge-infer models` marks it; int8 for robust)"
precision_option = click.option("--precision", type=click.Choice(PRECISIONS), help=PRECISION_HELP)
threads_option = click.option("--threads", type=click.IntRange(min=1),
                              help="onnxruntime intra-op threads  [default: 1; the decode workers use the cores]")
# classify and classify-dataset share these: the same records from the same choices
preprocess_option = click.option("--preprocess", "preprocessing", type=click.Choice(["robust", "plain"]),
                                 default="robust", show_default=True,
                                 help="robust: undo a photo's presentation; plain: the study's squash")
top_k_option = click.option("--top-k", "-k", type=click.IntRange(min=1, max=10), default=3, show_default=True)
min_confidence_option = click.option("--min-confidence", type=click.FloatRange(0.0, 1.0), default=0.0,
                                     show_default=True,
                                     help="below it the label is 'uncertain' (best guess kept in best_label)")
mirror_option = click.option("--mirror-average", is_flag=True,
                             help="also classify each image's mirror image and average the two (2x inference)")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="edge-infer")
def main() -> None:
    """Classify clothing photos into the 10 Fashion-MNIST classes, on CPU."""


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--recursive", "-r", is_flag=True, help="descend into sub-folders")
@model_option
@precision_option
@preprocess_option
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@threads_option
@click.option("--workers", type=click.IntRange(min=1), help="decode/preprocess workers: threads, or forked processes for big folders  [default: one per core]")
@top_k_option
@min_confidence_option
@click.option("--format", "-f", "fmt", type=click.Choice(formats.FORMATS),
              help="table, csv, json or jsonl  [default: from the --output extension, else table]")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="write here (atomically) instead of stdout")
@click.option("--save-preprocessed", type=click.Path(file_okay=False), help="save what the model saw as PNGs")
@mirror_option
@click.option("--quiet", "-q", is_flag=True, help="no progress bar and no per-file error lines")
def classify(inputs, recursive, model, precision, preprocessing, batch_size, threads, workers, top_k,
             min_confidence, mirror_average, fmt, output, save_preprocessed, quiet):
    """Classify image files, folders or glob patterns."""
    from .classifier import Classifier

    fmt = fmt or formats.format_for(output)
    try:
        classifier = Classifier(model, precision, preprocessing, batch_size, threads, workers, top_k, min_confidence,
                                mirror_average)
    except ModelError as exc:
        fail(str(exc))
    if preprocessing == "robust":
        warn_about(classifier.model.info)
    progress = _Progress(sys.stderr.isatty())
    try:
        result = classifier.classify(inputs, recursive, save_preprocessed, None if quiet else progress)
    finally:
        progress.close()
    if not result.records:
        _fail_no_images(" ".join(inputs), result.skipped_files, result.skipped_folders)
    if not quiet:
        for record in result.failed:
            click.echo(f"edge-infer: {record.path}: {record.error}", err=True)
    emit(formats.format_records([r.to_dict() for r in result], fmt, result.summary()), output)
    if output and not quiet:
        click.echo(f"edge-infer: wrote {len(result)} records to {output}", err=True)
    sys.exit(EXIT_SOME_FAILED if result.failed else EXIT_OK)


def _fail_no_images(where: str, skipped_files: int, skipped_folders: list[tuple[str, int]]) -> None:
    fail(f"no images found in {where} ({skipped_files} non-image files skipped"
         + "".join(f"; {path}: {n} images, use -r" for path, n in skipped_folders) + ")")


class _Progress:
    """classify's progress on stderr: click's progress bar on a terminal; piped, a plain line at
    most every `every_s` seconds (so a short run prints none and a long one shows it is alive)."""

    def __init__(self, terminal: bool, every_s: float = 10.0):
        import time

        self.terminal, self.every_s, self.clock = terminal, every_s, time.monotonic
        self.bar = None
        self.last = self.clock()

    def __call__(self, done: int, total: int) -> None:
        if self.terminal:
            if self.bar is None:  # the total is known once the inputs are collected
                self.bar = click.progressbar(length=total, label="classifying", file=sys.stderr, show_pos=True)
            self.bar.update(done - self.bar.pos)
        elif self.clock() - self.last >= self.every_s and done < total:
            self.last = self.clock()
            click.echo(f"edge-infer: classified {done}/{total}", err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.render_finish()


@main.command("classify-dataset")
@click.argument("source")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="a .parquet, .csv or .jsonl file, written whole at the end (a temporary file until then)")
@click.option("--recursive", "-r", is_flag=True, help="descend into local sub-folders (a URI is always listed whole)")
@click.option("--address", help="join this Ray cluster (auto, or ray://head:10001)  "
                                "[default: RAY_ADDRESS, a cluster started here by `ray start`, else a new local one]")
@click.option("--actors", type=click.IntRange(min=1),
              help="model replicas, one onnxruntime session each  [default: the cluster's CPUs / --cpus-per-actor]")
@click.option("--cpus-per-actor", type=click.IntRange(min=1), default=1, show_default=True,
              help="CPUs per actor: its decode and onnxruntime threads")
@model_option
@precision_option
@preprocess_option
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True,
              help="images per call of an actor")
@top_k_option
@min_confidence_option
@mirror_option
@click.option("--quiet", "-q", is_flag=True, help="no Ray progress and no per-file error lines")
def classify_dataset(source, output, recursive, address, actors, cpus_per_actor, model, precision, preprocessing,
                     batch_size, top_k, min_confidence, mirror_average, quiet):
    """Classify SOURCE on a Ray cluster: the records `classify` makes, into one output file.

    SOURCE is a folder, glob, image file, text file listing one path a line, or a URI Ray's
    readers accept (s3://bucket/photos/, gs://...). Local paths must be readable at the same
    place on every node. Needs `pip install 'edge-infer[ray]'`.
    """
    import time

    from . import ray_data

    try:
        ray = ray_data.require_ray()
        ray_data.output_kind(output)
        found = ray_data.find_images(source, recursive)
        # before any cluster: a bad model is one line now, not a dead actor later
        classifier = ray_data.RayClassifier(model, precision, preprocessing, batch_size, top_k, min_confidence,
                                            mirror_average, actors, cpus_per_actor)
    except (ray_data.RayUnavailable, ray_data.SourceError, ModelError, ValueError) as exc:
        fail(str(exc))
    if found.files == []:
        _fail_no_images(source, found.skipped_files, found.skipped_folders)
    if preprocessing == "robust":
        warn_about(classifier.info)
    started_here = _join_ray(ray, address, quiet)
    try:
        tick = time.perf_counter()
        tally = _classify_on_ray(ray, ray_data, classifier, found, output, quiet)
        seconds = time.perf_counter() - tick
    finally:
        if started_here:
            ray.shutdown()
    summary = tally.summary(found)
    click.echo(formats.summary_table(summary), nl=False)
    if not quiet:
        click.echo(f"edge-infer: wrote {summary['images']} records to {output} in {seconds:.1f} s "
                   f"({summary['images'] / seconds:,.0f} images/s, cluster start-up not counted)", err=True)
    sys.exit(EXIT_SOME_FAILED if tally.failed else EXIT_OK)


def _join_ray(ray, address: str | None, quiet: bool) -> bool:
    """Connect to Ray (or start a local cluster); True when this process started it and must stop it."""
    if quiet:
        import logging

        ray.data.DataContext.get_current().enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # no per-dataset lines, nor "progress bars off"
    if ray.is_initialized():  # a Python caller (or a test) already chose the cluster
        return False
    try:
        ray.init(address=address, log_to_driver=not quiet, logging_level="ERROR" if quiet else "INFO")
    except Exception as exc:  # noqa: BLE001 - Ray raises several types for an unreachable or bad address
        where = f"join the Ray cluster at {address}" if address else "start or join a local Ray cluster"
        fail(f"cannot {where} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})")
    return True


def _classify_on_ray(ray, ray_data, classifier, found, output: str, quiet: bool):
    """Run the job and stream its records into the output; exit 2 with one line if the job fails."""
    def report(path: str, error: str) -> None:
        click.echo(f"edge-infer: {path}: {error}", err=True)

    try:
        pool = classifier.pool_size()
        images = ray_data.images_dataset(found, block_rows=4 * classifier.options["batch_size"], min_blocks=4 * pool)
        return ray_data.write_records(classifier.classify(images), output, classifier.top_k,
                                      on_failed=None if quiet else report)
    except ray_data.SourceError as exc:
        fail(str(exc) if str(exc).startswith(found.source) else f"{found.source}: {exc}")
    except ray.exceptions.RayError as exc:  # retries exhausted, a node lost for good, a broken cluster
        fail(f"the Ray job failed, nothing written ({str(exc).strip().splitlines()[-1]})")
    except OSError as exc:
        fail(f"{output}: cannot write ({exc.strerror or exc})")


@main.command("models")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def list_models(fmt):
    """List the shipped models with their accuracy and size."""
    from .runtime import load_manifest

    manifest = load_manifest()
    entries = manifest.get("models", [])

    def preferred(entry: dict) -> bool:
        return entry["precision"] == preferred_precision(entry["name"], manifest)

    if fmt == "json":
        click.echo(json.dumps(entries, indent=2))
        return
    if not entries:
        fail("no models are shipped in this install")
    rows = [
        [e["name"] + (" (default)" if e["name"] == DEFAULT_MODEL and preferred(e) else ""),
         e["precision"] + (" (preferred)" if preferred(e) else ""),
         e["file"], f"{e['params']:,}", f"{e['bytes'] / 1024:.0f} KiB",
         f"{e['test_accuracy']:.4f}" if e.get("test_accuracy") is not None else "-"]
        for e in entries
    ]
    click.echo(formats.render_table(rows, ["model", "precision", "file", "params", "size", "test acc"],
                                    align_right=[3, 4, 5]), nl=False)
    for e in manifest.get("end_to_end", []):
        click.echo(f"\n{e['file']}: {e['name']} ({e['precision']}) with preprocessing {e['preprocessing']} "
                   f"inside, one file for any onnxruntime ({e['bytes'] / 1024:.0f} KiB; edge-infer serve-page)")


@main.command()
@click.argument("model", default=DEFAULT_MODEL)
@precision_option
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="json", show_default=True)
def info(model, precision, fmt):
    """Print a model's self-description (ONNX metadata) and manifest entry."""
    from .runtime import OnnxModel

    try:
        description = OnnxModel(model, precision).describe()
    except ModelError as exc:
        fail(str(exc))
    click.echo(json.dumps(description, indent=2) if fmt == "json" else formats.description_table(description),
               nl=fmt == "json")


@main.command()
@click.argument("folders", nargs=-1, type=click.Path(file_okay=False))
@click.option("--model", "-m", "models", multiple=True, default=[DEFAULT_MODEL], show_default=True,
              help="model name or ONNX path; repeat to compare")
@click.option("--precision", "precisions", multiple=True, type=click.Choice(PRECISIONS),
              help=f"repeat to compare fp32 and int8; {PRECISION_HELP}")
@click.option("--data-dir", help="folder with the Fashion-MNIST files (default: search the usual places)")
@click.option("--no-test-set", is_flag=True, help="only score the labelled folders")
@click.option("--corruption-images", type=click.IntRange(min=0), default=2000, show_default=True,
              help="test images per corruption and severity (0 skips the suite; 10000 is all)")
@click.option("--corruption", "corruption_names", multiple=True, help="only these corruptions (repeatable)")
@click.option("--through-preprocessing", "--preprocess-corruptions", "through_preprocessing", is_flag=True,
              help="also score the corrupted images after robust preprocessing (the product, not the bare model); "
                   "--preprocess-corruptions is its old name")
@click.option("--seed", type=int, default=0, show_default=True)
@mirror_option
@threads_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="write here (atomically) instead of stdout")
def evaluate(folders, models, precisions, data_dir, no_test_set, corruption_images, corruption_names,
             through_preprocessing, seed, mirror_average, threads, fmt, output):
    """Score models on the test set, the corruption suite and labelled folders (with labels.csv)."""
    pairs = [(model, precision) for model in models for precision in precisions or [preferred_precision(model)]]
    results = _evaluate(pairs, folders, data_dir, no_test_set, corruption_images, threads,
                        corruption_names=list(corruption_names) or None, seed=seed,
                        through_preprocessing=through_preprocessing, mirror_average=mirror_average)
    if fmt == "json":
        emit(json.dumps({"results": results}, indent=2) + "\n", output)
    else:
        emit(formats.evaluation_tables(results), output)


def _batch_sizes(ctx, param, value: str) -> tuple[int, ...]:
    try:
        return formats.positive_integers(value, "batch sizes", "1,32,256")
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@main.command()
@click.argument("folders", nargs=-1)
@click.option("--model", "-m", "models", multiple=True, help="model name or ONNX path (default: every shipped model)")
@click.option("--precision", "precisions", multiple=True, type=click.Choice(PRECISIONS),
              default=list(PRECISIONS), show_default=True)
@click.option("--batch-sizes", default="1,32,256", show_default=True, callback=_batch_sizes)
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="onnxruntime intra-op threads for the model-only numbers")
@click.option("--repeats", type=click.IntRange(min=10), default=2000, show_default=True,
              help="batch-1 latency measurements per model")
@click.option("--seconds", type=click.FloatRange(min=0.0), default=1.0, show_default=True,
              help="how long to run each throughput measurement")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="write here (atomically) instead of stdout")
def benchmark(folders, models, precisions, batch_sizes, threads, repeats, seconds, fmt, output):
    """Latency and throughput per model and precision; images/s end to end on FOLDERS."""
    from .evaluation import benchmark as bench
    from .runtime import shipped_names

    names = list(models) or shipped_names()
    if not names:
        fail("no models to benchmark")
    try:
        result = bench.run_benchmark(names, list(precisions), batch_sizes, threads, repeats, seconds, folders,
                                     on_step=lambda step: click.echo(f"edge-infer: benchmarking {step}", err=True))
    except (ModelError, ValueError) as exc:
        fail(str(exc))
    if fmt == "json":
        emit(json.dumps(result, indent=2) + "\n", output)
    else:
        emit(formats.benchmark_tables(result), output)


@main.command("report")
@click.argument("folders", nargs=-1, type=click.Path(file_okay=False))
@click.option("--evaluation", "evaluation_path", type=click.Path(dir_okay=False),
              help="JSON from `edge-infer evaluate --format json` (default: evaluate every shipped model now)")
@click.option("--runs", "runs_dir", type=click.Path(file_okay=False),
              help="training runs folder with <model>/history.json")
@click.option("--benchmark", "benchmark_path", type=click.Path(dir_okay=False),
              help="JSON from `edge-infer benchmark --format json` (adds p50 latency)")
@click.option("--data-dir", help="folder with the Fashion-MNIST files (default: search the usual places)")
@click.option("--no-test-set", is_flag=True, help="only score the labelled folders")
@click.option("--corruption-images", type=click.IntRange(min=0), default=1000, show_default=True,
              help="test images per corruption and severity (0 skips the suite)")
@threads_option
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True,
              help="the HTML page to write (atomically)")
def report_command(folders, evaluation_path, runs_dir, benchmark_path, data_dir, no_test_set, corruption_images,
                   threads, output):
    """One self-contained HTML page: models, training curves, corruptions, confusion matrices, gallery.

    Scores the shipped models (fp32 and int8) on the test set and labelled FOLDERS, or reads an
    earlier `edge-infer evaluate --format json` result with --evaluation. Needs matplotlib.
    """
    from .evaluation import report as reporting

    try:
        reporting.require_matplotlib()
        if evaluation_path:
            ctx = click.get_current_context()
            evaluating = [f"--{name.replace('_', '-')}" for name in ("data_dir", "no_test_set", "corruption_images",
                                                                      "threads")
                          if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT]
            if folders or evaluating:
                fail(f"{' '.join(list(folders) + evaluating)}: only used without --evaluation "
                     "(the evaluation file already holds the scores)")
            evaluation = reporting.load_evaluation(evaluation_path)
            source = reporting.describe_file(evaluation_path)
        latencies = reporting.load_latencies(benchmark_path) if benchmark_path else None
        if runs_dir and not os.path.isdir(runs_dir):
            fail(f"{runs_dir}: no such folder (--runs)")
        runs = reporting.load_runs(runs_dir) if runs_dir else None
        if not evaluation_path:
            from .runtime import manifest_entry, shipped_names

            pairs = [(name, precision) for name in shipped_names() for precision in PRECISIONS
                     if manifest_entry(name, precision)]
            if not pairs:
                fail("no models are shipped in this install; pass --evaluation EVAL.json")
            evaluation = {"results": _evaluate(pairs, folders, data_dir, no_test_set, corruption_images, threads)}
            source = "run by edge-infer report (" + (
                "labelled folders only" if no_test_set else f"{corruption_images} test images per corruption") + ")"
        page = reporting.build_report(evaluation, runs, latencies, source)
    except reporting.ReportError as exc:
        fail(str(exc))
    emit(page, output)


def _evaluate(pairs, folders, data_dir, no_test_set, corruption_images, threads, **options) -> list[dict]:
    """The library's evaluate, with progress and warnings on stderr; usage errors exit 2."""
    from .evaluation.evaluate import EvaluationError, evaluate

    def announce(name, precision):  # progress: evaluating a model takes seconds to minutes
        click.echo(f"edge-infer: evaluating {name}/{precision}", err=True)

    try:
        return evaluate(pairs, folders, data_dir, not no_test_set, corruption_images, threads, on_model=announce,
                        on_warning=warn,
                        **options)
    except EvaluationError as exc:
        fail(str(exc))


@main.command("serve-page")
@click.option("--model", "-m", default=DEFAULT_MODEL, show_default=True, help="whose end-to-end file the page runs")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(min=0, max=65535), default=8000, show_default=True)
@click.option("--ort-dir", type=click.Path(file_okay=False),
              help="onnxruntime-web's dist folder  [default: the repository's web/node_modules/onnxruntime-web/dist]")
def serve_page(model: str, host: str, port: int, ort_dir: str | None) -> None:
    """Serve the browser page: photos are classified on the device by the end-to-end model
    (preprocessing inside), with onnxruntime-web; nothing is uploaded."""
    from .page import PageError, make_server

    try:
        server = make_server(model, host, port, ort_dir)
    except (PageError, ModelError) as exc:
        fail(str(exc))
    address, bound = server.server_address[:2]
    click.echo(f"edge-infer: serving the page on http://{address}:{bound}/ (Ctrl-C to stop)", err=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def run() -> None:
    """Console-script entry: one line instead of a traceback for anything unexpected.

    click's own handling would print "Aborted!" and exit 1 on Ctrl-C (the code for "some
    inputs failed"), so the exceptions are handled here. Outputs are written atomically at
    the end, so an interrupted run leaves no half-written file."""
    try:
        code = main(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else EXIT_OK)
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("edge-infer: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - last line of defence; EDGE_INFER_DEBUG shows the traceback
        if os.environ.get("EDGE_INFER_DEBUG"):
            raise
        click.echo(f"edge-infer: internal error: {type(exc).__name__}: {exc} "
                   "(set EDGE_INFER_DEBUG=1 for a traceback)", err=True)
        sys.exit(EXIT_USAGE)
