"""Headless Chromium for tests, driven over the DevTools protocol on a pipe
(``--remote-debugging-pipe``: JSON messages ending in a NUL byte, commands on the browser's
descriptor 3, answers on 4). It needs only Debian's ``chromium`` package: no browser download,
no websocket client, no driver."""

import base64
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

PATHS = ("chromium", "chromium-browser")
# Puts the two pipe ends on the descriptors 3 and 4 that Chromium expects, then becomes it
# (by way of descriptors above 9, so that neither end overwrites the other).
LAUNCH = """
import fcntl, os, sys
ends = [fcntl.fcntl(int(fd), fcntl.F_DUPFD, 10) for fd in sys.argv[1:3]]
os.dup2(ends[0], 3)
os.dup2(ends[1], 4)
os.execv(sys.argv[3], sys.argv[3:])
"""


def chromium_or_skip() -> str:
    """The browser's path; the test is skipped where there is none, but fails in CI."""
    for name in PATHS:
        found = shutil.which(name)
        if found:
            return found
    message = "no chromium: apt-get install chromium (.ci/run installs it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def artifacts() -> Path:
    """Where tests keep what a person may want to look at: $SERVICENET_ARTIFACTS or tests/artifacts."""
    folder = Path(os.environ.get("SERVICENET_ARTIFACTS") or Path(__file__).parent / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Browser:
    """One headless browser with one page."""

    def __init__(
        self, executable: str, profile: Path, log: Path, width: int = 1400, height: int = 900
    ) -> None:
        commands_read, self._commands = os.pipe()
        self._answers, answers_write = os.pipe()
        options = [
            "--headless",
            "--remote-debugging-pipe",
            "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "--lang=zh-CN",
            "about:blank",
        ]
        with log.open("ab") as errors:
            self.process = subprocess.Popen(
                [sys.executable, "-c", LAUNCH, str(commands_read), str(answers_write), executable, *options],
                pass_fds=(commands_read, answers_write),
                stdin=subprocess.DEVNULL,
                stdout=errors,
                stderr=errors,
            )
        os.close(commands_read)
        os.close(answers_write)
        self.width = width
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.call("Page.enable", session=self.session)

    def call(self, method: str, params: dict[str, Any] | None = None, session: str = "") -> Any:
        """Send one command and wait for its answer (events that come meanwhile are kept)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._receive()
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self._events.append(answer)

    def goto(self, url: str) -> None:
        self._events.clear()
        self.call("Page.navigate", {"url": url}, self.session)
        self.wait_for_load()

    def wait_for_load(self, timeout: float = 15.0) -> None:
        """Until the page's load event (the one after the last goto or clear)."""
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in self._events):
            self._events.append(self._receive(deadline))
        self._events.clear()

    def evaluate(self, expression: str) -> Any:
        found = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, self.session)
        if "exceptionDetails" in found:
            raise RuntimeError(f"{expression[:60]}: {found['exceptionDetails']}")
        return found["result"].get("value")

    def submit(self, expression: str) -> None:
        """Run a script that submits a form, then wait for the page it leads to."""
        self._events.clear()
        self.evaluate(expression)
        self.wait_for_load()

    def type(self, text: str) -> None:
        """Type text into the element that has the focus."""
        self.call("Input.insertText", {"text": text}, self.session)

    def press(self, key: str, loads: bool = False) -> None:
        """Press and release Enter, Tab, Space or ArrowDown as the keyboard would; with
        ``loads``, wait for the page it leads to."""
        self._events.clear()
        keys = {"Enter": (13, "\r"), "Tab": (9, ""), "Space": (32, " "), "ArrowDown": (40, "")}
        code, text = keys[key]
        for kind in ("keyDown", "keyUp"):
            name = " " if key == "Space" else key
            params: dict[str, Any] = {"type": kind, "key": name, "code": key, "windowsVirtualKeyCode": code}
            if kind == "keyDown" and text:
                params["text"] = text
            self.call("Input.dispatchKeyEvent", params, self.session)
        if loads:
            self.wait_for_load()

    def set_files(self, selector: str, *files: Path) -> None:
        """Choose files in a file input, as a person would in the file dialog."""
        found = self.call(
            "Runtime.evaluate", {"expression": f"document.querySelector({selector!r})"}, self.session
        )
        params = {"files": [str(f) for f in files], "objectId": found["result"]["objectId"]}
        self.call("DOM.setFileInputFiles", params, self.session)

    def screenshot(self, path: Path) -> None:
        """The whole page, not just the window, as PNG."""
        self.call("Emulation.clearDeviceMetricsOverride", {}, self.session)
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        metrics = {"width": self.width, "height": min(height, 6000), "deviceScaleFactor": 1, "mobile": False}
        self.call("Emulation.setDeviceMetricsOverride", metrics, self.session)
        shot = self.call("Page.captureScreenshot", {"format": "png"}, self.session)
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (OSError, RuntimeError, TimeoutError):
            pass
        os.close(self._commands)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        os.close(self._answers)

    def _receive(self, deadline: float | None = None) -> dict[str, Any]:
        deadline = deadline or time.monotonic() + 15.0
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._answers], [], [], left)[0]:
                raise TimeoutError("the browser did not answer in time")
            chunk = os.read(self._answers, 1 << 20)
            if not chunk:
                raise OSError("the browser closed its end of the pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        found: dict[str, Any] = json.loads(message)
        return found
