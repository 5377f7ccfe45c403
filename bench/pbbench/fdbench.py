"""The fdbench client (bench/anchors/fdbench.c), run as www-data against any granting socket.

Items 1 and 2 use the same client for every server, so a difference in grant rate is the
server's, not the client's.
"""
import re

from .config import BIN
from .procs import run

FDBENCH_RE = re.compile(r"grants=(\d+) failures=(\d+) seconds=([\d.]+) grants_per_s=(\d+) "
                        r"p50_us=([\d.]+) p99_us=([\d.]+) max_us=([\d.]+)")


def fdbench(sock, total, threads):
    r = run([f"{BIN}/fdbench", sock, str(total), str(threads)], user="www", check=False, timeout=60)
    m = FDBENCH_RE.search(r.stdout)
    if not m:
        raise RuntimeError(f"fdbench on {sock}: {r.stdout} {r.stderr}")
    g, f, s, rate, p50, p99, mx = m.groups()
    return {"grants": int(g), "failures": int(f), "seconds": float(s), "rate": float(rate),
            "p50": float(p50), "p99": float(p99), "max": float(mx)}
