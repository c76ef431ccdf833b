#!/usr/bin/python3
"""lp_browser.py - drives Debian's headless Chromium through its DevTools
protocol for the dashboard's browser test (tests/shell/dashboard_browser.sh).

    lp_browser.py URL PNG TASKS -- LOAD COMMAND...

Starts chromium with --remote-debugging-pipe (the protocol as JSON
messages ended by NUL on fds 3 and 4: no port, no WebSocket library) and
a new temporary profile, opens URL, then checks what a user would see:
  1. the engines table fills (prints the row count, at least 1 needed);
  2. before any load the throughput chart's peak is 0 and the task
     stream is empty;
  3. LOAD COMMAND runs (a map through the client library); meanwhile the
     throughput chart must show a peak above 0 and its picture must
     change, the task stream must draw bars, and the error of the load's
     failing task must be listed with its traceback;
  4. once the load has ended and the page has caught up (the stream
     shows TASKS bars), a screenshot goes to PNG.
Prints one line per fact ("rows 4", "peak 131.2", ...) for the shell test
to assert on, and exits 0, or 1 naming what did not happen within its
deadline. Every wait has a deadline; chromium is ended (by its pid) on
every path.
"""
import base64, json, os, select, shutil, subprocess, sys, tempfile, time

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1280,1100",
         "--remote-debugging-pipe"]


class Browser:
    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="lpchromium.")
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()
        # chromium reads fd 3 and writes fd 4: the pipe ends go to fds 10
        # and 11 here, and a shell moves them to 3 and 4 before it execs
        os.dup2(to_chrome_r, 10)
        os.dup2(from_chrome_w, 11)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.log = open(os.path.join(self.profile, "chromium.log"), "wb")
        self.proc = subprocess.Popen(
            ["/bin/bash", "-c", 'exec 3<&10 4>&11 10<&- 11>&- "$0" "$@"', CHROMIUM] + FLAGS
            + ["--user-data-dir=" + self.profile, "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            pass_fds=(10, 11))
        os.close(10)
        os.close(11)
        self.buffer = b""
        self.next_id = 0
        self.session = None

    def close(self):
        if self.proc.poll() is None:
            try:
                self.call("Browser.close", timeout=5)
            except Exception:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        os.close(self.to_chrome)
        os.close(self.from_chrome)
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def call(self, method, params=None, timeout=20, session=True):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self.to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self.next_id:
                    if "error" in reply:
                        raise RuntimeError("%s: %s" % (method, reply["error"]))
                    return reply.get("result", {})
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("%s: no answer from chromium in %d s" % (method, timeout))
            ready, _, _ = select.select([self.from_chrome], [], [], left)
            if ready:
                chunk = os.read(self.from_chrome, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed its pipe (exit %s)" % self.proc.poll())
                self.buffer += chunk

    def open(self, url):
        target = self.call("Target.createTarget", {"url": url}, session=False)
        attached = self.call("Target.attachToTarget",
                             {"targetId": target["targetId"], "flatten": True}, session=False)
        self.session = attached["sessionId"]
        self.call("Page.enable")
        self.call("Runtime.enable")

    def eval(self, expression):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise RuntimeError("page: %s %s" % (details.get("text"),
                                                details.get("exception", {}).get("description")))
        return result["result"].get("value")

    def wait(self, what, expression, seconds):
        """Polls expression until it is true (null while the page is not
        there yet); its value, or TimeoutError."""
        deadline = time.monotonic() + seconds
        while True:
            value = self.eval("(() => { try { return %s; } catch (e) { return null; } })()"
                              % expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError("%s: not seen within %d s (last: %r)" % (what, seconds, value))
            time.sleep(0.2)     # poll interval, not synchronisation


ROWS = "document.querySelectorAll('#engines tbody tr').length"
PEAK = "Number(document.getElementById('throughput').dataset.peak)"
POINTS = "Number(document.getElementById('throughput').dataset.points)"
PICTURE = "document.getElementById('throughput').toDataURL()"
BARS = "Number(document.getElementById('stream').dataset.bars)"
ERRORS = "document.getElementById('errors').textContent"
LIVE = "document.getElementById('live').textContent"


def main():
    if len(sys.argv) < 6 or sys.argv[4] != "--":
        sys.exit("usage: lp_browser.py URL PNG TASKS -- LOAD COMMAND...")
    url, png, tasks, load = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[5:]
    browser = Browser()
    loader = None
    try:
        browser.open(url)
        rows = browser.wait("engine rows", "%s > 0 && %s" % (POINTS, ROWS), 30)
        print("rows %d" % rows)
        print("live %s" % browser.eval(LIVE))
        print("before: peak %s bars %s" % (browser.eval(PEAK), browser.eval(BARS)))
        before = browser.eval(PICTURE)
        loader = subprocess.Popen(load)
        peak = browser.wait("throughput above 0", "%s > 0 && %s" % (PEAK, PEAK), 40)
        print("peak %s" % peak)
        changed = browser.eval(PICTURE) != before
        print("chart changed %s" % ("yes" if changed else "no"))
        bars = browser.wait("task stream bars", BARS, 40)
        print("bars %d" % bars)
        if loader.wait(90) != 0:
            raise RuntimeError("the load command failed (status %d)" % loader.returncode)
        loader = None
        text = browser.wait("the failing task's error",
                            "%s.includes('dashboard test error') && %s" % (ERRORS, ERRORS), 30)
        print("error listed %s" % ("with traceback" if "stack traceback" in text else "without traceback"))
        # Caught up: every task of the load drawn
        final = browser.wait("all %d tasks in the stream" % tasks,
                             "%s >= %d && %s" % (BARS, tasks, BARS), 30)
        print("bars after %d" % final)
        # A user opens the error to read its traceback: it must stay open
        # across the page's next updates
        browser.eval("document.querySelector('#errors details summary').click()")
        browser.wait("the traceback shown", "document.querySelector('#errors details').open", 5)
        seen = browser.eval(POINTS)
        browser.wait("an update", "%s > %d || (%s >= 120 && %s)" % (POINTS, seen, POINTS, PEAK), 10)
        print("traceback open %s" % ("yes" if browser.eval(
            "document.querySelector('#errors details').open") else "no"))
        shot = browser.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        with open(png, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        print("screenshot %s" % png)
        return 0
    except Exception as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        if loader is not None and loader.poll() is None:
            loader.kill()
            loader.wait(10)
        browser.close()


if __name__ == "__main__":
    sys.exit(main())
