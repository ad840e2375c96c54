"""The browser page (edge-infer serve-page) in headless Chromium: the end-to-end model under
onnxruntime-web answers as `edge-infer classify` does."""

import os
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge_infer.classifier import Classifier
from edge_infer.cli import main
from edge_infer.page import PageError, find_ort_dir, make_server, serve_in_background

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
# CI installs Chromium and onnxruntime-web and sets this, so that a missing tool fails there
REQUIRED = os.environ.get("EDGE_INFER_REQUIRE_BROWSER") == "1"


def _browser_or_skip():
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    try:
        find_ort_dir()
    except PageError:
        missing.append("onnxruntime-web (npm ci --prefix web)")
    if missing:
        if REQUIRED:
            pytest.fail(f"missing: {', '.join(missing)}")
        pytest.skip(f"missing: {', '.join(missing)}")


def _answers_in_chromium(folder: Path) -> list[dict]:
    server = make_server("robust", port=0, images=folder)
    serve_in_background(server)
    url = f"http://127.0.0.1:{server.server_address[1]}/?selftest=images/index.json"
    try:
        # (Chromium's helper processes may still be writing its profile as it is removed)
        with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
            browser = subprocess.Popen(
                [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 f"--user-data-dir={profile}", url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)
            try:
                finished = server.selftest_done.wait(240)
            finally:
                os.killpg(browser.pid, signal.SIGTERM)  # the browser and its helper processes
                browser.wait(30)
    finally:
        server.shutdown()
        server.server_close()
    assert finished, "the page did not report back within 240 s"
    return server.selftest_answers


def test_the_page_answers_like_classify_on_unseen_and_shifted():
    _browser_or_skip()
    folder = ROOT / "unseen"
    answers = _answers_in_chromium(folder)
    assert isinstance(answers, list), answers  # a dict here carries the page's error
    records = Classifier("robust").classify([str(folder)], recursive=True).records
    expected = {Path(record.path).resolve().relative_to(folder).as_posix(): record for record in records}
    assert len(answers) == len(expected) == 147  # 47 in unseen/, 100 in unseen/shifted/
    for answer in answers:
        assert answer.get("index") == expected[answer["name"]].best_class_index, answer


def test_serve_page_explains_a_missing_onnxruntime_web(tmp_path):
    result = CliRunner().invoke(main, ["serve-page", "--ort-dir", str(tmp_path), "--port", "0"])
    assert result.exit_code == 2
    assert "onnxruntime-web" in result.output and "npm ci --prefix web" in result.output


def test_the_server_serves_only_what_it_should(tmp_path):
    try:
        find_ort_dir()
    except PageError:
        if REQUIRED:
            raise
        pytest.skip("onnxruntime-web is not installed (npm ci --prefix web)")
    import json
    import urllib.error
    import urllib.request

    images = tmp_path / "images"
    images.mkdir()
    (images / "a coat.png").write_bytes((ROOT / "unseen" / "noto_coat.png").read_bytes())
    (tmp_path / "secret.txt").write_text("not for the page")
    (images / "link.png").symlink_to(tmp_path / "secret.txt")
    server = make_server("robust", port=0, images=images)
    serve_in_background(server)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        info = json.loads(urllib.request.urlopen(f"{base}/model.json").read())
        assert info["name"] == "robust" and len(info["class_names"]) == 10
        listing = urllib.request.urlopen(f"{base}/images/index.json")
        assert listing.headers["Content-Type"] == "application/json"
        assert json.loads(listing.read()) == ["a coat.png"]  # the link out of the folder is not listed
        assert urllib.request.urlopen(f"{base}/images/a%20coat.png").read()[:4] == b"\x89PNG"
        for path in ("/images/../secret.txt", "/images/%2e%2e/secret.txt", "/images/link.png", "/nothing",
                     "/ort/../page.py"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(base + path)
            assert refused.value.code == 404, path
    finally:
        server.shutdown()
        server.server_close()
