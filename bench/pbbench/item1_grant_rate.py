"""Item 1: grant rate and latency, portbinder beside fdserver_min.c and fdserver.py.

Every server is driven by the same fdbench client, 1 and 4 threads, in interleaved rounds whose
order rotates, and compared as the median of per-round ratios (each round's ratio is shown, so
the spread is visible). Beside the one-binding daemon, the same daemon serving 1,000 bindings
shows what the number of bindings costs a grant; with --baseline, an earlier build of both runs
in the same rounds, for before/after. The anchors' RSS, read here while they run, is returned
for item 2's table.
"""
import re
import subprocess
import time

from .config import ANCHORS, BASELINE, BIN, PB, PY, Q, SOCK, WORK
from .daemon import Portbinder, wait_socket, write_config
from .fdbench import fdbench
from .grant_rounds import ONE, THOUSAND, rounds_text, summary_rows
from .procs import popen, stop, wait_until
from .procstat import cpu_ns, median, pss_uss, rss_breakdown, status_kib
from .results import FACTS, section, table
from .syscalls import PERF, syscalls_per_grant



def daemons(binary, tag, port):
    """This build (or the baseline's) with 1 binding and with 1,000 (clients fetch the 500th)."""
    one = Portbinder(["--bind", f"grant=127.0.0.1:{port}", "--group", "www-data", "--user", "nobody",
                      "--socket-dir", f"{SOCK}/run1{tag}", "--log", "syslog"], binary=binary).start()
    write_config(f"{WORK}/grant1000{tag}.toml", 1000, f"{SOCK}/run1000{tag}", "syslog",
                 base_port=port + 3000)
    thousand = Portbinder(["--config", f"{WORK}/grant1000{tag}.toml"], binary=binary).start()
    return (one, f"{SOCK}/run1{tag}/grant.sock"), (thousand, f"{SOCK}/run1000{tag}/b0499.sock")


def measure():
    """Runs item 1; returns {server: (VmRSS, VmHWM, RSS by mapping, (PSS, USS, by mapping))} for
    item 2."""
    rounds = 3 if Q else 7
    totals = {1: 4000 if Q else 10000, 4: 8000 if Q else 20000}
    mn = popen([f"{BIN}/fdserver_min", f"{SOCK}/min.sock", "18001"], stdout=subprocess.DEVNULL)
    gist = popen([PY, f"{ANCHORS}/fdserver.py", "--port=18000", f"--unix_socket={SOCK}/gist.sock"],
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    (pb, pb_sock), (pb1000, pb1000_sock) = daemons(PB, "", 18002)
    socks = {ONE: pb_sock, "fdserver_min.c": f"{SOCK}/min.sock", "fdserver.py": f"{SOCK}/gist.sock",
             THOUSAND: pb1000_sock}
    pids = {ONE: pb.pid, "fdserver_min.c": mn.pid, "fdserver.py": gist.pid, THOUSAND: pb1000.pid}
    before = []
    if BASELINE:
        label, path = BASELINE
        for (d, sock), name in zip(daemons(path, "-before", 25002),
                                   (f"{ONE} {label}", f"{THOUSAND}, {label}")):
            socks[name], pids[name] = sock, d.pid
            before.append((name, d))
    for s in socks.values():
        wait_socket(s)
    names = list(socks)
    for n in names:  # warm-up
        for t in (1, 4):
            fdbench(socks[n], 2000, t)
    res = {(n, t): [] for n in names for t in (1, 4)}
    cpu = {(n, t): [] for n in names for t in (1, 4)}
    deadline = time.monotonic() + (60 if Q else 150) * (1.5 if BASELINE else 1)
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
    rss = {n: (status_kib(pids[n], "VmRSS"), status_kib(pids[n], "VmHWM"), rss_breakdown(pids[n]),
               pss_uss(pids[n])) for n in names}
    counted = [ONE, "fdserver_min.c", "fdserver.py"] + [n for n, _ in before[:1]]
    calls = {(n, t): syscalls_per_grant(pids[n], socks[n], threads=t) for n in counted for t in (1, 4)}
    for d in [pb, pb1000] + [d for _, d in before]:
        d.stop()
    lines = wait_until(lambda: [l for l in pb.lines()] if any(l.startswith("event=stop") for l in pb.lines())
                       else None, 5, "the stop line in syslog")
    grant_lines = sum(1 for l in lines if l.startswith("event=grant"))
    suppressed = [int(m.group(1)) for l in lines if l.startswith("event=suppressed")
                  for m in [re.search(r"count=(\d+)", l)] if m]
    stop_line = next((l for l in lines if l.startswith("event=stop")), "")
    stop(mn), stop(gist)

    rows = []
    for t in (1, 4):
        for n in names:
            rs = res[(n, t)]
            fails = sum(x["failures"] for x in rs)
            rows.append([f"{t}", n, f"{median([x['rate'] for x in rs]):.0f}",
                         f"{median([x['p50'] for x in rs]):.1f}", f"{median([x['p99'] for x in rs]):.1f}",
                         f"{median(cpu[(n, t)]) / 1000:.1f}", fails, len(rs)])
    ratios = summary_rows(res, cpu, [n for n, _ in before])
    text = table(["clients", "server", "grants/s (median)", "p50 µs", "p99 µs", "server CPU µs/grant",
                  "failures", "rounds"], rows)
    text += "\n\n" + rounds_text(res, cpu, [n for n, _ in before])
    if BASELINE:
        text += (f"\n\nThe baseline {BASELINE[0]} is built from its own tree with its own Cargo.toml (bench/run "
                 "--baseline), so this build against it compares the code and the release profile together.")
    measured = sum(x["grants"] for (n2, _t), xs in res.items() if n2 == ONE for x in xs)
    text += (f"\n\nAudit logging was on, to the namespace's rsyslogd: the 1-binding portbinder wrote {grant_lines} "
             f"`event=grant` lines and {len(suppressed)} `event=suppressed` lines (counting {sum(suppressed)} "
             f"grants not logged one by one) for its {measured} measured grants (plus warm-up). Its stop line: "
             f"`{stop_line}`. The rate limiter logs at most 20 events per kind, binding and uid per 10 s and "
             "counts the rest, so under a flood from one uid almost every grant is answered without a syslog "
             "write; the first 20 of each window are logged in full.")
    text += (f"\n\nSystem calls per grant, counted {'by perf stat (syscall tracepoints)' if PERF else 'by strace -c'} "
             "on each server during 4,000 more grants with 1 and with 4 clients (the wait and the accept4 "
             "that finds the queue empty depend on timing: how often the server catches up with its clients "
             "and sleeps; the rest is per connection):\n\n")
    crow = []
    for (n, t), c in calls.items():
        total = sum(c.values())
        top = ", ".join(f"{k} {v:.2f}" for k, v in sorted(c.items(), key=lambda kv: -kv[1]) if v >= 0.05)
        crow.append([n, t, f"{total:.1f}", top])
    text += table(["server", "clients", "calls per grant", "by call (≥ 0.05 per grant)"], crow)
    FACTS["grant"] = {"calls": {n: c for (n, t), c in calls.items() if t == 1}, "ratios": ratios,
                      "cpu": {(n, t): median(cpu[(n, t)]) / 1000 for n in names for t in (1, 4)}}
    section("1. Grant rate and latency (fdbench, the same client for every server)", text)
    return rss
