"""python web/screenshot.py OUT.png IMAGE... : the browser page after classifying IMAGEs, as a PNG.

Serves the page like `edge-infer serve-page`, opens it in headless Chromium with the images
listed (the page's ?selftest= mode shows a card per image), waits for the answers, and takes
the screenshot over the DevTools protocol on a pipe (no extra dependency). Used for the
README's picture.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from edge_infer.page import make_server, serve_in_background  # noqa: E402

CHROMIUM = "/usr/bin/chromium"


class DevTools:
    """Chromium's --remote-debugging-pipe: JSON messages ending in NUL, commands on fd 3, replies on fd 4."""

    def __init__(self, url: str, profile: str):
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()

        def wire_fds():
            os.dup2(to_browser_read, 3)
            os.dup2(from_browser_write, 4)

        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
             "--remote-debugging-pipe", f"--user-data-dir={profile}"],
            pass_fds=(3, 4, to_browser_read, from_browser_write), preexec_fn=wire_fds,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        target = self.call("Target.createTarget", {"url": url})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def close(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)  # the browser and its helper processes
        self.process.wait(30)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out, images = Path(argv[0]), [Path(p) for p in argv[1:]]
    with tempfile.TemporaryDirectory() as folder, tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        for index, image in enumerate(reversed(images)):  # the page shows the newest card first
            shutil.copy(image, Path(folder) / f"{index:02d}_{image.name}")
        server = make_server("robust", port=0, images=folder)
        serve_in_background(server)
        url = f"http://127.0.0.1:{server.server_address[1]}/?selftest=images/index.json"
        browser = None
        try:
            browser = DevTools(url, profile)
            if not server.selftest_done.wait(240):
                raise RuntimeError("the page did not finish within 240 s")
            browser.call("Emulation.setDeviceMetricsOverride", {"width": 1000, "height": 300 + 160 * len(images),
                                                                "deviceScaleFactor": 1, "mobile": False},
                         browser.session)
            shot = browser.call("Page.captureScreenshot", {"format": "png"}, browser.session)
        finally:
            if browser is not None:
                browser.close()
            server.shutdown()
            server.server_close()
    out.write_bytes(base64.b64decode(shot["data"]))
    print(f"wrote {out}; answers: {json.dumps(server.selftest_answers)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
