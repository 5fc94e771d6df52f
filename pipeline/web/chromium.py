"""A headless Chromium driven over the DevTools protocol on a pipe (no extra Python package).

Tests and benchmarks open the page ``kws web`` writes in a real browser with a fake microphone
fed from a WAV file, then read what the page shows (``Browser.evaluate``) or take a screenshot.
Chromium is started with ``--remote-debugging-pipe``: it reads NUL-terminated JSON commands on
file descriptor 3 and writes replies and events on 4.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from pipeline.core.errors import StageError

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# Headless, no sandbox (root in CI containers), nothing that calls out to the network.
BASE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-features=MediaRouter,OptimizationHints,Translate",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
)


def find_chromium() -> str | None:
    """The path of a Chromium (or Chrome) executable on PATH, or None."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """One headless Chromium showing ``url``; ``fake_audio`` (a WAV file) is its microphone,
    played in a loop. Use as a context manager: the browser and its profile folder are gone
    afterwards."""

    def __init__(self, url: str, fake_audio: Path | None = None, size=(900, 700)):
        executable = find_chromium()
        if executable is None:
            raise StageError("chromium not found on PATH (apt-get install chromium)")
        self._profile = tempfile.mkdtemp(prefix="kws-chromium-")
        flags = [
            *BASE_FLAGS,
            f"--user-data-dir={self._profile}",
            f"--window-size={size[0]},{size[1]}",
        ]
        if fake_audio is not None:
            flags += [
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={Path(fake_audio).resolve()}",
            ]
        # Chromium's own messages go to a file in the profile: its last line explains an exit.
        self._stderr_path = Path(self._profile) / "chromium-stderr.log"
        stderr = open(self._stderr_path, "wb")  # noqa: SIM115 (closed once Popen has it)
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire():  # in the child: fd 3 reads commands, fd 4 writes replies. Each pipe end is
            # first copied to a new fd above 4 (F_DUPFD never replaces an open fd, whatever
            # numbers the pipes got), so placing one on 3 or 4 cannot close the other; the
            # copies are closed after this runs.
            reads = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 5)
            writes = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 5)
            os.dup2(reads, 3)
            os.dup2(writes, 4)

        try:
            self._process = subprocess.Popen(
                [executable, *flags, "--remote-debugging-pipe", url],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                preexec_fn=wire,
                pass_fds=(3, 4),
            )
        except OSError as error:
            for fd in (self._to_browser, self._from_browser):
                os.close(fd)
            shutil.rmtree(self._profile, ignore_errors=True)
            raise StageError(f"{executable}: cannot start ({error.strerror})") from None
        finally:
            stderr.close()
            os.close(to_browser_r)
            os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.console: list[str] = []
        try:
            self._session = self._attach()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._process.poll() is None:
            with contextlib.suppress(StageError, OSError):
                self.send("Browser.close", timeout=5)
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self._profile, ignore_errors=True)

    def _last_words(self) -> str:
        """': ' and the last line Chromium wrote to stderr, if any."""
        try:
            text = self._stderr_path.read_text(encoding="utf-8", errors="replace")
            lines = text.strip().splitlines()
        except OSError:
            return ""
        return f": {lines[-1].strip()}" if lines else ""

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise StageError("chromium: no reply from the DevTools pipe in time")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise StageError(f"chromium exited (DevTools pipe closed){self._last_words()}")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params=None, session: str | None = None, timeout: float = 30):
        """Send one DevTools command and return its result (events met meanwhile: console
        messages are kept in ``console``)."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise StageError(f"chromium: {method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            if reply.get("method") == "Runtime.consoleAPICalled":
                args = reply["params"].get("args", [])
                self.console.append(
                    " ".join(str(a.get("value", a.get("description"))) for a in args)
                )
            elif reply.get("method") == "Runtime.exceptionThrown":
                details = reply["params"]["exceptionDetails"]
                self.console.append(
                    "exception: " + str(details.get("exception", {}).get("description", details))
                )

    def _attach(self) -> str:
        deadline = time.monotonic() + 30
        while True:
            pages = [
                t for t in self.send("Target.getTargets")["targetInfos"] if t["type"] == "page"
            ]
            if pages:
                break
            if time.monotonic() > deadline:
                raise StageError("chromium: no page opened")
            time.sleep(0.1)
        session = self.send(
            "Target.attachToTarget", {"targetId": pages[0]["targetId"], "flatten": True}
        )["sessionId"]
        self.send("Runtime.enable", session=session)
        return session

    def evaluate(self, expression: str, timeout: float = 30):
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=self._session,
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise StageError(f"chromium: {expression[:60]!r} threw: {text}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30, every: float = 0.1):
        """Evaluate ``expression`` until it is truthy; return that value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise StageError(
                    f"chromium: {expression[:60]!r} still false after {timeout:g} s "
                    f"(console: {self.console[-5:]})"
                )
            time.sleep(every)

    def screenshot(self, path: Path) -> None:
        """A PNG of the page as it is now."""
        data = self.send("Page.captureScreenshot", {"format": "png"}, session=self._session)
        Path(path).write_bytes(base64.b64decode(data["data"]))
