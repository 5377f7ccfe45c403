"""Item 2: memory (RSS) with 1 and 1,000 bindings, and start-up time to READY.

RSS is split by mapping because most of it is shared file pages, which is what the analysis
explains a miss with. Start-up is timed on a pipe (log=stderr), so the ready line's arrival is
exact, with 1 to 1,000 bindings to show whether the cost per binding grows.
"""
import os
import time

from .config import PB, Q, SOCK, VARIANTS, WORK
from .daemon import Portbinder, write_config
from .fdbench import fdbench
from .procstat import cpu_ns, median, pss_uss, rss_breakdown, status_kib
from .results import FACTS, SUMMARY, section, table, verdict


def measure(anchor_rss):
    """Runs item 2; ANCHOR_RSS is what item 1 returned (None when it did not run)."""
    sizes = [1, 10, 100, 1000]
    for n in sizes:
        write_config(f"{WORK}/start{n}.toml", n, f"{SOCK}/runs{n}", "stderr")
        write_config(f"{WORK}/mem{n}.toml", n, f"{SOCK}/runm{n}", "syslog")
    # RSS: syslog on, after start and after 5,000 grants on the first binding.
    mem = {}
    for n in (1, 1000):
        pb = Portbinder(["--config", f"{WORK}/mem{n}.toml"]).start()
        after_start = status_kib(pb.pid, "VmRSS")
        fdbench(f"{SOCK}/runm{n}/b0000.sock", 5000, 4)
        mem[n] = (after_start, status_kib(pb.pid, "VmRSS"), status_kib(pb.pid, "VmHWM"),
                  len(os.listdir(f"/proc/{pb.pid}/fd")), rss_breakdown(pb.pid), pss_uss(pb.pid))
        pb.stop()
    for label, path in VARIANTS:
        pb = Portbinder(["--config", f"{WORK}/mem1.toml"], binary=path).start()
        fdbench(f"{SOCK}/runm1/b0000.sock", 5000, 4)
        mem[label] = (None, status_kib(pb.pid, "VmRSS"), status_kib(pb.pid, "VmHWM"), 0, rss_breakdown(pb.pid),
                      pss_uss(pb.pid), os.path.getsize(path))
        pb.stop()
    # Start-up to READY, log=stderr (a pipe: the ready line's arrival is timed exactly).
    rounds = 3 if Q else 9
    wall = {n: [] for n in sizes}
    cpu = {n: [] for n in sizes}
    deadline = time.monotonic() + (30 if Q else 60)
    for r in range(rounds):
        if time.monotonic() > deadline:
            break
        for n in sizes[r % 4:] + sizes[:r % 4]:
            pb = Portbinder(["--config", f"{WORK}/start{n}.toml"], log_to="stderr").start()
            wall[n].append(pb.ready_s)
            cpu[n].append(cpu_ns(pb.pid) / 1e9)
            pb.stop()
    rows = []
    for n in sizes:
        rows.append([n, f"{median(wall[n]) * 1000:.2f}", f"{median(cpu[n]) * 1000:.2f}",
                     f"{(median(wall[n]) / median(wall[1])):.1f}", len(wall[n])])
    slope_lo = (median(wall[100]) - median(wall[10])) / 90
    slope_hi = (median(wall[1000]) - median(wall[100])) / 900
    cslope_lo = (median(cpu[100]) - median(cpu[10])) / 90
    cslope_hi = (median(cpu[1000]) - median(cpu[100])) / 900
    def parts(b):
        return ", ".join(f"{k} {b.get(k, 0) / 1024:.2f}" for k in ("program", "libc", "other files", "anonymous"))
    def shared(pu):
        pss, uss, by = pu
        return (f"{pss / 1024:.2f} / {uss / 1024:.2f}",
                ", ".join(f"{k} {by.get(k, (0, 0))[0] / 1024:.2f} / {by.get(k, (0, 0))[1] / 1024:.2f}"
                          for k in ("program", "libc", "other files", "anonymous")))
    mrows = [["portbinder, 1 binding", f"{mem[1][0] / 1024:.2f}", f"{mem[1][1] / 1024:.2f}",
              f"{mem[1][2] / 1024:.2f}", parts(mem[1][4]), *shared(mem[1][5])],
             ["portbinder, 1,000 bindings", f"{mem[1000][0] / 1024:.2f}", f"{mem[1000][1] / 1024:.2f}",
              f"{mem[1000][2] / 1024:.2f}", parts(mem[1000][4]), *shared(mem[1000][5])]]
    for label, _ in VARIANTS:
        _, rss, hwm, _, b, pu, size = mem[label]
        mrows.append([f"portbinder, 1 binding, build: {label} ({size / 1e6:.1f} MB file)", "", f"{rss / 1024:.2f}",
                      f"{hwm / 1024:.2f}", parts(b), *shared(pu)])
    FACTS["rss"] = {"pb": mem[1][1], "parts": mem[1][4], "size": os.path.getsize(PB),
                    "pss": mem[1][5][0], "uss": mem[1][5][1], "pss_parts": mem[1][5][2],
                    "variants": {label: mem[label][1] for label, _ in VARIANTS}}
    for name, (rss, hwm, b, pu) in (anchor_rss or {}).items():
        if not name.startswith("portbinder"):
            mrows.append([f"{name} (after item 1)", "", f"{rss / 1024:.2f}", f"{hwm / 1024:.2f}", parts(b),
                          *shared(pu)])
    text = table(["daemon", "RSS after start, MiB", "RSS after 5,000 grants, MiB", "peak RSS (VmHWM), MiB",
                  "RSS by mapping after the grants, MiB", "PSS / USS after the grants, MiB",
                  "PSS / USS by mapping, MiB"], mrows)
    text += ("\n\nRSS counts every page mapped into the process, shared ones included: `program` is the daemon's "
             "own executable, `libc` glibc, `other files` ld.so and libgcc_s (and Python's modules for the gist), "
             "`anonymous` heap and stacks, the only part no other process shares. A page of the executable "
             "counts as soon as it is mapped, and the kernel maps file pages around each fault (fault-around, "
             "large folios), so a 1 MiB text segment ends up almost wholly resident although the serve loop "
             "runs a small part of it. PSS shares each page out between the processes mapping it (glibc's "
             "pages are everyone's); USS counts the pages that only this process maps, which for a file's "
             "pages (the executable's) means only that no other process maps that file at the moment: they "
             "are clean page cache, dropped and re-read under memory pressure, not memory the daemon holds.")
    text += "\n\nStart-up to READY (spawn until the `event=ready` line arrives), interleaved rounds:\n\n"
    text += table(["bindings", "wall ms (median)", "daemon CPU ms (median)", "wall vs 1 binding", "rounds"], rows)
    # On a noisy quick run 100 bindings may start no slower than 10: no slope to compare.
    lin = slope_hi / slope_lo if slope_lo > 0 else float("nan")
    cl = cslope_hi / cslope_lo if cslope_lo > 0 else float("nan")
    text += (f"\n\nCost per added binding: {slope_lo * 1e6:.0f} µs wall ({cslope_lo * 1e6:.0f} µs CPU) from 10 to "
             f"100 bindings, {slope_hi * 1e6:.0f} µs wall ({cslope_hi * 1e6:.0f} µs CPU) from 100 to 1,000: "
             f"ratio {lin:.2f} (1.0 = linear; above ~1.5 would mean super-linear growth).")
    section("2. Memory (RSS) and start-up time", text)
    FACTS["rss"].update({"pb1000": mem[1000][1], "startup_x": median(wall[1000]) / median(wall[1]),
                         # The verdict of both tables: linear if wall or CPU time says so (CPU
                         # time is what the daemon itself spends; wall time also waits).
                         "linear": min(lin, cl),
                         "anchors": {n: v[0] for n, v in (anchor_rss or {}).items()}})
    SUMMARY.append((2, "RSS, 1 binding (after 5,000 grants)", f"{mem[1][1] / 1024:.2f} MiB", "< 2 MiB",
                    verdict(mem[1][1] < 2048)))
    SUMMARY.append((2, "RSS, 1,000 bindings (after 5,000 grants)", f"{mem[1000][1] / 1024:.2f} MiB", "< 8 MiB",
                    verdict(mem[1000][1] < 8192)))
    SUMMARY.append((2, "start-up: per-binding cost 100→1,000 vs 10→100",
                    f"{lin:.2f} (wall), {cl:.2f} (CPU); 1,000 bindings = {median(wall[1000]) / median(wall[1]):.1f}x "
                    "the time of 1", "linear at most", verdict(min(lin, cl) < 1.5)))
