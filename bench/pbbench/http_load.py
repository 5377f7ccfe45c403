"""HTTP load with wrk: its command line, its output parsed, a run in the background.

Items 4 to 6 all load the same app with wrk and count failed requests the same way (socket
errors plus non-2xx), so the parsing and the restart tables live here once.
"""
import re
import subprocess
import time

from .procs import popen

WRK_ERR_RE = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def wrk(port, seconds, close=False, conns=16, timeout=None):
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "2s"]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(f"http://127.0.0.1:{port}/")
    return argv


def parse_wrk(out):
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    n = re.search(r"(\d+) requests in", out)
    e = WRK_ERR_RE.search(out)
    non2 = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = [int(x) for x in e.groups()] if e else [0, 0, 0, 0]
    return {"rps": float(m.group(1)) if m else 0.0, "requests": int(n.group(1)) if n else 0,
            "connect": errs[0], "read": errs[1], "write": errs[2], "timeout": errs[3],
            "non2xx": int(non2.group(1)) if non2 else 0, "errors": sum(errs) + (int(non2.group(1)) if non2 else 0)}


class Load:
    """wrk in the background for SECONDS, parsed when done."""

    def __init__(self, port, seconds, close):
        self.p = popen(wrk(port, seconds, close=close), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.t0 = time.monotonic()

    def at(self, t):
        """Sleeps until T seconds after the load started."""
        time.sleep(max(0, self.t0 + t - time.monotonic()))

    def result(self, timeout=60):
        out, err = self.p.communicate(timeout=timeout)
        return parse_wrk(out.decode())


def restart_rows(results):
    return [[mode, name, r["requests"], f"{r['rps']:.0f}", r["errors"],
             f"connect {r['connect']}, read {r['read']}, write {r['write']}, timeout {r['timeout']}, "
             f"non-2xx {r['non2xx']}", note] for (mode, name, r, note) in results]
