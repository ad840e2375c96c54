"""The browser page (edge_infer/web) and an end-to-end model on a local HTTP server.

The page runs `<name>.e2e.onnx` (preprocessing and classifier in one graph) with
onnxruntime-web: photos never leave the browser. onnxruntime-web itself is not in the wheel
(its WebAssembly files are 14 MB); the page takes it from a folder holding its `dist` files,
by default the repository's `web/node_modules/onnxruntime-web/dist` (`npm ci --prefix web`).
"""

from __future__ import annotations

import json
import mimetypes
import threading
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import onnxruntime as ort

from .files import DRAFT_SIZE, collect
from .runtime import ModelError, resolve_end_to_end

PAGE_DIR = Path(__file__).resolve().parent / "web"
DEFAULT_ORT_DIR = Path(__file__).resolve().parent.parent / "web" / "node_modules" / "onnxruntime-web" / "dist"
ORT_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.wasm", "ort-wasm-simd-threaded.mjs")
_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm",
          ".json": "application/json", ".html": "text/html; charset=utf-8", ".onnx": "application/octet-stream"}


def _content_type(name: str) -> str:
    suffix = Path(name).suffix or ".html"  # "/" is the page
    return _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


class PageError(Exception):
    pass


def find_ort_dir(ort_dir: str | Path | None = None) -> Path:
    folder = Path(ort_dir) if ort_dir else DEFAULT_ORT_DIR
    missing = [name for name in ORT_FILES if not (folder / name).is_file()]
    if missing:
        raise PageError(f"{folder}: onnxruntime-web's files are not there ({', '.join(missing)} missing); "
                        "run `npm ci --prefix web` in the repository, or pass --ort-dir with a copy of "
                        "onnxruntime-web 1.30.0's dist folder")
    return folder


def model_info(model: str) -> tuple[Path, dict]:
    """The end-to-end file and what the page shows about it (read from the file's own metadata)."""
    path, entry = resolve_end_to_end(model)
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise ModelError(f"{path}: onnxruntime cannot load it ({str(exc).splitlines()[0]})") from None
    metadata = session.get_modelmeta().custom_metadata_map
    return path, {
        "name": entry["name"], "precision": entry["precision"], "preprocessing": entry["preprocessing"],
        "class_names": json.loads(metadata["class_names"]),
        "draft_size": DRAFT_SIZE,  # the page decodes big JPEGs at the size classify does
    }


class _Handler(BaseHTTPRequestHandler):
    def __init__(self, *args, routes: dict, images: Path | None, **kwargs):
        self.routes, self.images = routes, images
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = unquote(self.path.split("?", 1)[0])
        try:
            if path in self.routes:
                body = self.routes[path]
                self._send(body() if callable(body) else body, _content_type(path))
            elif path.startswith("/images/") and self.images is not None:
                self._send_image(path[len("/images/"):])
            else:
                self.send_error(404)
        except OSError:  # a file gone since the server started
            self.send_error(404)

    def do_POST(self) -> None:  # noqa: N802
        # the page's ?selftest= answers, kept for whoever started the server (the browser test)
        if self.path.split("?", 1)[0] != "/selftest" or self.images is None:
            self.send_error(404)
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            answers = json.loads(self.rfile.read(min(length, 10_000_000)) or b"null")
        except ValueError:
            self.send_error(400)
            return
        self.server.selftest_answers = answers
        self.server.selftest_done.set()
        self._send(b"{}", _TYPES[".json"])

    def _send_image(self, relative: str) -> None:
        root = self.images.resolve()
        if relative == "index.json":  # the folder's images (and its sub-folders'), in classify's order
            names = []
            for item in collect([str(self.images)], recursive=True).files:
                target = Path(item.path).resolve()
                if not item.error and root in target.parents:  # a link leading out is left out
                    names.append(target.relative_to(root).as_posix())
            self._send(json.dumps(names).encode(), _TYPES[".json"])
            return
        target = (root / relative).resolve()
        if root not in target.parents or not target.is_file():
            self.send_error(404)
            return
        self._send(target.read_bytes(), _content_type(target.name))

    def _send(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:  # quiet: the CLI says where it serves
        pass


def make_server(model: str, host: str = "127.0.0.1", port: int = 8000, ort_dir: str | Path | None = None,
                images: str | Path | None = None) -> ThreadingHTTPServer:
    """A server (not yet serving) for the page, the model and, if given, a folder of images
    under /images/ (with /images/index.json listing them, for the page's ?selftest=)."""
    ort_folder = find_ort_dir(ort_dir)
    model_path, info = model_info(model)
    routes = {
        "/": (PAGE_DIR / "index.html").read_bytes(),
        "/index.html": (PAGE_DIR / "index.html").read_bytes(),
        "/app.js": (PAGE_DIR / "app.js").read_bytes(),
        "/model.json": json.dumps(info).encode(),
        "/model.onnx": model_path.read_bytes(),
    }
    for name in ORT_FILES:
        routes[f"/ort/{name}"] = partial((ort_folder / name).read_bytes)
    handler = partial(_Handler, routes=routes, images=Path(images) if images else None)
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise PageError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    server.selftest_answers, server.selftest_done = None, threading.Event()
    return server


def serve_in_background(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread
