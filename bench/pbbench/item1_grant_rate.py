"""Item 1: grant rate and latency, portbinder beside fdserver_min.c and fdserver.py.

Every server is driven by the same fdbench client, 1 and 4 threads, in interleaved rounds whose
order rotates, and compared as the median of per-round ratios. Beside the one-binding daemon, the
same daemon serving 1,000 bindings shows what the number of bindings costs a grant. The anchors'
RSS, read here while they run, is returned for item 2's table.
"""
import re
import subprocess
import time

from .config import ANCHORS, BIN, PY, Q, SOCK, WORK
from .daemon import Portbinder, wait_socket, write_config
from .fdbench import fdbench
from .procs import popen, stop, wait_until
from .procstat import cpu_ns, median, rss_breakdown, status_kib
from .results import FACTS, SUMMARY, rfmt, section, table, verdict
from .syscalls import PERF, syscalls_per_grant


def measure():
    """Runs item 1; returns {server: (VmRSS, VmHWM, RSS by mapping)} for item 2."""
    rounds = 3 if Q else 7
    totals = {1: 4000 if Q else 10000, 4: 8000 if Q else 20000}
    mn = popen([f"{BIN}/fdserver_min", f"{SOCK}/min.sock", "18001"], stdout=subprocess.DEVNULL)
    gist = popen([PY, f"{ANCHORS}/fdserver.py", "--port=18000", f"--unix_socket={SOCK}/gist.sock"],
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pb = Portbinder(["--bind", "grant=127.0.0.1:18002", "--group", "www-data", "--user", "nobody",
                     "--socket-dir", f"{SOCK}/run1", "--log", "syslog"]).start()
    # The same daemon serving 1,000 bindings, clients fetching the 500th.
    write_config(f"{WORK}/grant1000.toml", 1000, f"{SOCK}/run1000", "syslog", base_port=21000)
    pb1000 = Portbinder(["--config", f"{WORK}/grant1000.toml"]).start()
    socks = {"portbinder": f"{SOCK}/run1/grant.sock", "fdserver_min.c": f"{SOCK}/min.sock",
             "fdserver.py": f"{SOCK}/gist.sock", "portbinder, 1,000 bindings": f"{SOCK}/run1000/b0499.sock"}
    pids = {"portbinder": pb.pid, "fdserver_min.c": mn.pid, "fdserver.py": gist.pid,
            "portbinder, 1,000 bindings": pb1000.pid}
    for s in socks.values():
        wait_socket(s)
    names = list(socks)
    for n in names:  # warm-up
        for t in (1, 4):
            fdbench(socks[n], 2000, t)
    res = {(n, t): [] for n in names for t in (1, 4)}
    cpu = {(n, t): [] for n in names for t in (1, 4)}
    deadline = time.monotonic() + (60 if Q else 150)
    for r in range(rounds):
        if time.monotonic() > deadline:
            break
        order = names[r % len(names):] + names[:r % len(names)]
        for t in (1, 4):
            for n in order:
                c0 = cpu_ns(pids[n])
                out = fdbench(socks[n], totals[t], t)
                cpu[(n, t)].append((cpu_ns(pids[n]) - c0) / max(out["grants"], 1))
                res[(n, t)].append(out)
    rss = {n: (status_kib(pids[n], "VmRSS"), status_kib(pids[n], "VmHWM"), rss_breakdown(pids[n]))
           for n in names}
    calls = {n: syscalls_per_grant(pids[n], socks[n]) for n in ("portbinder", "fdserver_min.c", "fdserver.py")}
    pb.stop()
    pb1000.stop()
    lines = wait_until(lambda: [l for l in pb.lines()] if any(l.startswith("event=stop") for l in pb.lines())
                       else None, 5, "the stop line in syslog")
    grant_lines = sum(1 for l in lines if l.startswith("event=grant"))
    suppressed = [int(m.group(1)) for l in lines if l.startswith("event=suppressed")
                  for m in [re.search(r"count=(\d+)", l)] if m]
    stop_line = next((l for l in lines if l.startswith("event=stop")), "")
    stop(mn), stop(gist)

    rows, ratios = [], {}
    for t in (1, 4):
        for n in names:
            rs = res[(n, t)]
            fails = sum(x["failures"] for x in rs)
            rows.append([f"{t}", n, f"{median([x['rate'] for x in rs]):.0f}",
                         f"{median([x['p50'] for x in rs]):.1f}", f"{median([x['p99'] for x in rs]):.1f}",
                         f"{median(cpu[(n, t)]) / 1000:.1f}", fails, len(rs)])
        for who in ("portbinder", "portbinder, 1,000 bindings"):
            for other in ("fdserver_min.c", "fdserver.py"):
                per_round = [a["rate"] / b["rate"] for a, b in zip(res[(who, t)], res[(other, t)])]
                ratios[(t, who, other)] = (median(per_round), min(per_round), max(per_round))
            ratios[(t, who, "cpu")] = median(cpu[(who, t)]) / median(cpu[("fdserver_min.c", t)])
    text = table(["clients", "server", "grants/s (median)", "p50 µs", "p99 µs", "server CPU µs/grant",
                  "failures", "rounds"], rows)
    text += "\n\nportbinder's grant rate as a ratio (median of per-round ratios, [min–max] over rounds):\n\n"
    rrows = []
    for t in (1, 4):
        for who in ("portbinder", "portbinder, 1,000 bindings"):
            a, b = ratios[(t, who, "fdserver_min.c")], ratios[(t, who, "fdserver.py")]
            rrows.append([t, who, f"{a[0]:.2f} [{a[1]:.2f}–{a[2]:.2f}]", f"{b[0]:.2f} [{b[1]:.2f}–{b[2]:.2f}]",
                          f"{ratios[(t, who, 'cpu')]:.2f}"])
        a, b = ratios[(t, "portbinder", "fdserver_min.c")], ratios[(t, "portbinder", "fdserver.py")]
        plural = "s" if t > 1 else ""
        SUMMARY.append((1, f"grant rate, {t} client{plural}, vs fdserver_min.c", f"{rfmt(a[0], 0.9)}x",
                        "≥ 0.9x", verdict(a[0] >= 0.9)))
        SUMMARY.append((1, f"grant rate, {t} client{plural}, vs fdserver.py (gist)", f"{rfmt(b[0], 1.3)}x",
                        "≥ 1.3x", verdict(b[0] >= 1.3)))
    a = ratios[(1, "portbinder, 1,000 bindings", "fdserver_min.c")]
    SUMMARY.append((1, "(beside it) grant rate, 1 client, daemon serving 1,000 bindings, vs fdserver_min.c",
                    f"{a[0]:.2f}x", "(no target)", ""))
    text += table(["clients", "daemon", "vs fdserver_min.c", "vs fdserver.py", "server CPU per grant vs fdserver_min.c"],
                  rrows)
    measured = sum(x["grants"] for (n2, _t), xs in res.items() if n2 == "portbinder" for x in xs)
    text += (f"\n\nAudit logging was on, to the namespace's rsyslogd: the 1-binding portbinder wrote {grant_lines} "
             f"`event=grant` lines and {len(suppressed)} `event=suppressed` lines (counting {sum(suppressed)} "
             f"grants not logged one by one) for its {measured} measured grants (plus warm-up). Its stop line: "
             f"`{stop_line}`. The rate limiter collapses more than 20 identical events (same kind, binding, "
             "uid) per 10 s, so under a flood from one uid almost every grant is answered without a syslog "
             "write; the first 20 of each window are logged in full.")
    text += (f"\n\nSystem calls per grant, counted {'by perf stat (syscall tracepoints)' if PERF else 'by strace -c'} "
             "on each server during 4,000 more grants with 1 client (the poll and the accept4 that finds the "
             "queue empty depend on timing; the rest is per connection):\n\n")
    crow = []
    for n, c in calls.items():
        total = sum(c.values())
        top = ", ".join(f"{k} {v:.2f}" for k, v in sorted(c.items(), key=lambda kv: -kv[1]) if v >= 0.05)
        crow.append([n, f"{total:.1f}", top])
    text += table(["server", "calls per grant", "by call (≥ 0.05 per grant)"], crow)
    FACTS["grant"] = {"calls": calls, "ratios": ratios,
                      "cpu": {(n, t): median(cpu[(n, t)]) / 1000 for n in names for t in (1, 4)}}
    section("1. Grant rate and latency (fdbench, the same client for every server)", text)
    return rss
