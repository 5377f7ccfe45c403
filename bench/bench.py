#!/usr/bin/python3
"""The measurements of bench/run. Runs inside the network, mount and PID namespaces that
bench/run creates (port 80 is free there, /dev/log is a private rsyslogd); do not run it
directly. Every loop is bounded in rounds and in seconds. Results are ratios between set-ups
measured interleaved in the same run; absolute figures are printed for context only.
"""
import argparse
import datetime
import os
import platform
import pwd
import re
import signal
import socket
import statistics
import subprocess
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--root", required=True)
ap.add_argument("--work", required=True)
ap.add_argument("--bin", required=True)
ap.add_argument("--syslog", required=True)
ap.add_argument("--quick", action="store_true", help="fewer rounds, shorter runs (a smoke test)")
ap.add_argument("--only", default="1,2,3,4,5,6", help="comma-separated items to run")
ap.add_argument("--results", required=True, help="where to write the Markdown results")
ap.add_argument("--readme", help="README.md whose Performance section to rewrite")
ap.add_argument("--variant", action="append", default=[], metavar="LABEL=PATH",
                help="another build of portbinder, measured beside the default one in items 2 and 3")
ARGS = ap.parse_args()

ROOT, WORK, BIN, SYSLOG = ARGS.root, ARGS.work, ARGS.bin, ARGS.syslog
SOCK = f"{WORK}/sock"  # a tmpfs, as /run is on a Debian system: every Unix socket of the run
PB = os.path.join(ROOT, "target/release/portbinder")
ANCHORS = os.path.join(ROOT, "bench/anchors")
PY = "/usr/bin/python3"
TRUE = "/usr/bin/true"
AUTHBIND = "/usr/bin/authbind"
S6_RETRIEVE = "/usr/bin/s6-fdholder-retrieve"
ONLY = {int(x) for x in ARGS.only.split(",") if x}
Q = ARGS.quick
WWW = pwd.getpwnam("www-data")
T_START = time.monotonic()

PROCS = []  # every long-running process started, stopped at the end
VARIANTS = [tuple(v.split("=", 1)) for v in ARGS.variant]
FACTS = {}  # figures the analysis at the end explains the misses with


def log(msg):
    print(f"bench: [{time.monotonic() - T_START:6.1f}s] {msg}", flush=True)


def as_www():
    return {"user": WWW.pw_uid, "group": WWW.pw_gid, "extra_groups": []}


def popen(argv, user=None, **kw):
    kw.setdefault("stdin", subprocess.DEVNULL)
    if user == "www":
        kw.update(as_www())
    p = subprocess.Popen(argv, **kw)
    PROCS.append(p)
    return p


def stop(p, sig=signal.SIGTERM, timeout=10):
    if p.poll() is None:
        try:
            p.send_signal(sig)
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    for f in (p.stdout, p.stderr):
        if f:
            f.close()


def run(argv, user=None, timeout=120, check=True, **kw):
    if user == "www":
        kw.update(as_www())
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {r.returncode}: {r.stderr.strip()[-500:]}")
    return r


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.005)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def cpu_ns(pid):
    """CPU time of the process's main thread so far (ns), from /proc/PID/schedstat."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pids):
    """CPU seconds used so far by these processes, their live children and their reaped children."""
    total, seen = 0.0, set()
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append((int(d), fields))
            except OSError:
                pass
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime, stime, cutime, cstime are fields 14-17 of stat; here indexes 11-14.
        total += sum(int(x) for x in fields[11:15]) / TICK
        todo += [c for c, _ in children.get(pid, [])]
    return total


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def rss_breakdown(pid):
    """RSS in KiB per kind of mapping: the program's own file, libc, other libraries, anonymous."""
    exe = os.path.realpath(f"/proc/{pid}/exe")
    out, name = {}, None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+$", parts[0]):
                path = parts[5] if len(parts) > 5 else ""
                if path == exe:
                    name = "program"
                elif "/libc.so" in path:
                    name = "libc"
                elif path.startswith("/"):
                    name = "other files"
                else:
                    name = "anonymous"
            elif parts[0] == "Rss:":
                out[name] = out.get(name, 0) + int(parts[1])
    return out


def syslog_size():
    return os.path.getsize(SYSLOG)


def syslog_since(offset):
    with open(SYSLOG, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def has_exec():
    r = subprocess.run([PB, "exec", "--help"], capture_output=True, text=True)
    return r.returncode == 0, "--preload" in r.stdout


EXEC, PRELOAD = has_exec()


class Portbinder:
    """`portbinder serve` with flags or a config file. Ready when its `event=ready` line is in the
    syslog file (log=syslog) or on its stderr (log=stderr)."""

    def __init__(self, args, log_to="syslog", manager=None, binary=PB):
        self.args, self.log_to, self.manager, self.binary = args, log_to, manager, binary
        self.p = None

    def start(self, timeout=20):
        self.offset = syslog_size()
        argv = [self.binary, "serve"] + self.args
        kw = self.manager.spawn_args(argv) if self.manager else {"args": argv}
        t0 = time.monotonic()
        self.errfile = open(f"{WORK}/portbinder-{time.monotonic_ns()}.stderr", "w+b")
        self.p = popen(kw.pop("args"), stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE if self.log_to == "stderr" else self.errfile, **kw)
        if self.log_to == "stderr":
            for line in self.p.stderr:
                if b"event=ready" in line:
                    break
            else:
                raise RuntimeError(f"portbinder exited {self.p.wait()} before ready")
        else:
            tag = f"portbinder[{self.p.pid}]: event=ready"

            def ready():
                if self.p.poll() is not None:
                    raise RuntimeError(f"portbinder exited {self.p.returncode} before ready: "
                                       + self.stderr() + syslog_since(self.offset)[-600:])
                return tag in syslog_since(self.offset)
            wait_until(ready, timeout, "portbinder event=ready")
        self.ready_s = time.monotonic() - t0
        return self

    def stderr(self):
        self.errfile.seek(0)
        return self.errfile.read().decode(errors="replace")

    @property
    def pid(self):
        return self.p.pid

    def lines(self):
        tag = f"portbinder[{self.p.pid}]: "
        return [l.split(tag, 1)[1] for l in syslog_since(self.offset).splitlines() if tag in l]

    def stop(self):
        stop(self.p)


def wait_socket(path, timeout=10):
    wait_until(lambda: os.path.exists(path), timeout, path)


# ---------------------------------------------------------------------------------------------
# Results collection
# ---------------------------------------------------------------------------------------------

SECTIONS = []   # (title, markdown text)
SUMMARY = []    # (item, what, result, target, verdict)


def section(title, text):
    SECTIONS.append((title, text))
    print(f"\n## {title}\n\n{text}\n", flush=True)


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


def verdict(ok):
    return "met" if ok else "**missed**"


def rfmt(x, threshold):
    """x with 2 decimals, or 3 when 2 would round it onto the threshold it misses or meets."""
    return f"{x:.3f}" if f"{x:.2f}" == f"{threshold:.2f}" else f"{x:.2f}"


def fmt(x, nd=2):
    if x is None or (isinstance(x, float) and x != x):
        return "n/a"
    return f"{x:.{nd}f}"


# ---------------------------------------------------------------------------------------------
# 1. Grant rate and latency
# ---------------------------------------------------------------------------------------------

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


def perf_works():
    try:
        return subprocess.run(["perf", "stat", "-e", "syscalls:sys_enter_close", "-x,", "/usr/bin/true"],
                              capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


PERF = perf_works()


def syscalls_per_grant(pid, sock, grants=4000):
    """The daemon's system calls per grant during a short fdbench run (1 client): counted by the
    kernel's syscall tracepoints (perf stat, which costs the daemon almost nothing) when perf works,
    else by strace -c (which slows the daemon, so connections queue and poll/accept batch more)."""
    out = f"{WORK}/calls-{pid}.txt"
    if PERF:
        argv = ["perf", "stat", "-x,", "-o", out, "-e", "syscalls:sys_enter_*", "-p", str(pid)]
    else:
        argv = ["strace", "-c", "-f", "-q", "-o", out, "-p", str(pid)]
    tracer = popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # attached
    fdbench(sock, grants, 1)
    tracer.send_signal(signal.SIGINT)
    tracer.wait(20)
    counts = {}
    with open(out) as f:
        for line in f:
            parts = line.strip().split(",") if PERF else line.split()
            if PERF and len(parts) > 2 and parts[0].isdigit() and "sys_enter_" in parts[2]:
                if int(parts[0]):
                    counts[parts[2].split("sys_enter_")[1]] = int(parts[0]) / grants
            elif not PERF and len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                counts[parts[-1]] = int(parts[3]) / grants
    return counts


def item1():
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


# ---------------------------------------------------------------------------------------------
# 2. Memory and start-up time
# ---------------------------------------------------------------------------------------------

def write_config(path, n, sockdir, log_to, base_port=20000):
    with open(path, "w") as f:
        f.write(f'user = "nobody"\nsocket_dir = "{sockdir}"\nlog = "{log_to}"\n')
        for i in range(n):
            f.write(f'\n[binding.b{i:04d}]\nlisten = ["127.0.0.1:{base_port + i}"]\ngroup = "www-data"\n')


def item2(anchor_rss):
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
                  len(os.listdir(f"/proc/{pb.pid}/fd")), rss_breakdown(pb.pid))
        pb.stop()
    for label, path in VARIANTS:
        pb = Portbinder(["--config", f"{WORK}/mem1.toml"], binary=path).start()
        fdbench(f"{SOCK}/runm1/b0000.sock", 5000, 4)
        mem[label] = (None, status_kib(pb.pid, "VmRSS"), status_kib(pb.pid, "VmHWM"), 0, rss_breakdown(pb.pid),
                      os.path.getsize(path))
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
    mrows = [["portbinder, 1 binding", f"{mem[1][0] / 1024:.2f}", f"{mem[1][1] / 1024:.2f}",
              f"{mem[1][2] / 1024:.2f}", parts(mem[1][4])],
             ["portbinder, 1,000 bindings", f"{mem[1000][0] / 1024:.2f}", f"{mem[1000][1] / 1024:.2f}",
              f"{mem[1000][2] / 1024:.2f}", parts(mem[1000][4])]]
    for label, _ in VARIANTS:
        _, rss, hwm, _, b, size = mem[label]
        mrows.append([f"portbinder, 1 binding, build: {label} ({size / 1e6:.1f} MB file)", "", f"{rss / 1024:.2f}",
                      f"{hwm / 1024:.2f}", parts(b)])
    FACTS["rss"] = {"pb": mem[1][1], "parts": mem[1][4], "size": os.path.getsize(PB),
                    "variants": {label: mem[label][1] for label, _ in VARIANTS}}
    for name, (rss, hwm, b) in (anchor_rss or {}).items():
        if not name.startswith("portbinder"):
            mrows.append([f"{name} (after item 1)", "", f"{rss / 1024:.2f}", f"{hwm / 1024:.2f}", parts(b)])
    text = table(["daemon", "RSS after start, MiB", "RSS after 5,000 grants, MiB", "peak RSS (VmHWM), MiB",
                  "RSS by mapping after the grants, MiB"], mrows)
    text += ("\n\nRSS counts every page mapped into the process, shared ones included: `program` is the daemon's "
             "own executable, `libc` glibc, `other files` ld.so and libgcc_s (and Python's modules for the gist), "
             "`anonymous` heap and stacks, the only part no other process shares. A page of the executable "
             "counts as soon as it is mapped, and the kernel maps file pages around each fault (fault-around, "
             "large folios), so a 1 MiB text segment ends up almost wholly resident although the serve loop "
             "runs a small part of it.")
    text += "\n\nStart-up to READY (spawn until the `event=ready` line arrives), interleaved rounds:\n\n"
    text += table(["bindings", "wall ms (median)", "daemon CPU ms (median)", "wall vs 1 binding", "rounds"], rows)
    text += (f"\n\nCost per added binding: {slope_lo * 1e6:.0f} µs wall ({cslope_lo * 1e6:.0f} µs CPU) from 10 to "
             f"100 bindings, {slope_hi * 1e6:.0f} µs wall ({cslope_hi * 1e6:.0f} µs CPU) from 100 to 1,000: "
             f"ratio {slope_hi / slope_lo:.2f} (1.0 = linear; above ~1.5 would mean super-linear growth).")
    section("2. Memory (RSS) and start-up time", text)
    FACTS["rss"].update({"pb1000": mem[1000][1], "startup_x": median(wall[1000]) / median(wall[1]),
                         "linear": slope_hi / slope_lo if slope_lo > 0 else float("nan"),
                         "anchors": {n: v[0] for n, v in (anchor_rss or {}).items()}})
    SUMMARY.append((2, "RSS, 1 binding (after 5,000 grants)", f"{mem[1][1] / 1024:.2f} MiB", "< 2 MiB",
                    verdict(mem[1][1] < 2048)))
    SUMMARY.append((2, "RSS, 1,000 bindings (after 5,000 grants)", f"{mem[1000][1] / 1024:.2f} MiB", "< 8 MiB",
                    verdict(mem[1000][1] < 8192)))
    lin = slope_hi / slope_lo if slope_lo > 0 else float("nan")
    cl = cslope_hi / cslope_lo if cslope_lo > 0 else float("nan")
    SUMMARY.append((2, "start-up: per-binding cost 100→1,000 vs 10→100",
                    f"{lin:.2f} (wall), {cl:.2f} (CPU); 1,000 bindings = {median(wall[1000]) / median(wall[1]):.1f}x "
                    "the time of 1", "linear at most", verdict(min(lin, cl) < 1.5)))


# ---------------------------------------------------------------------------------------------
# 3. Cost to a starting app
# ---------------------------------------------------------------------------------------------

SPAWN_RE = re.compile(r"name=(\S+) runs=(\d+) failures=(\d+)(?: p10_us=([\d.]+) median_us=([\d.]+) "
                      r"p90_us=([\d.]+) mean_us=([\d.]+))?")


def item3(pb_http):
    # s6: an s6-fdholderd (as nobody), holding a listening socket bound to 0.0.0.0:81 by root.
    rules = f"{WORK}/s6rules"
    for uid, var in ((0, "S6_FDHOLDER_STORE_REGEX"), (WWW.pw_uid, "S6_FDHOLDER_RETRIEVE_REGEX")):
        os.makedirs(f"{rules}/uid/{uid}/env", exist_ok=True)
        open(f"{rules}/uid/{uid}/allow", "w").close()
        with open(f"{rules}/uid/{uid}/env/{var}", "w") as f:
            f.write("^tcp:\n")
    os.makedirs(f"{SOCK}/s6", mode=0o755, exist_ok=True)
    s6 = popen(["s6-fdholder-daemon", "-i", rules, f"{SOCK}/s6/fdh.sock"], stdout=subprocess.DEVNULL)
    wait_socket(f"{SOCK}/s6/fdh.sock")
    os.chmod(f"{SOCK}/s6/fdh.sock", 0o777)  # the rules decide, as in portbinder's second gate
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 81))
    s.listen(1024)
    subprocess.run(["s6-fdholder-store", f"{SOCK}/s6/fdh.sock", "tcp:0.0.0.0:81"], stdin=s, check=True, timeout=10)
    s.close()

    sockdir = f"{SOCK}/run"
    app = f"{BIN}/app"
    cmds = [
        ("true", [TRUE]),
        ("app-binds-itself", [app, "check", "bind:127.0.0.1:8090"]),
        ("app-fetch-C", [app, "check", f"fetch:{sockdir}/http.sock"]),
        ("authbind-true", [AUTHBIND, TRUE]),
        ("authbind-app", [AUTHBIND, app, "check", "bind:0.0.0.0:82"]),
        ("s6-retrieve-true", [S6_RETRIEVE, f"{SOCK}/s6/fdh.sock", "tcp:0.0.0.0:81", TRUE]),
        ("s6-retrieve-app", [S6_RETRIEVE, f"{SOCK}/s6/fdh.sock", "tcp:0.0.0.0:81", app, "check", "fd:0"]),
    ]
    cmds.append(("pb-version", [PB, "--version"]))
    for i, (label, path) in enumerate(VARIANTS):
        cmds.append((f"variant{i}-version", [path, "--version"]))
        if EXEC:
            cmds.append((f"variant{i}-exec-true", [path, "exec", "--socket-dir", sockdir, "http", "--", TRUE]))
    if EXEC:
        cmds += [
            ("pb-exec-true", [PB, "exec", "--socket-dir", sockdir, "http", "--", TRUE]),
            ("pb-exec-app", [PB, "exec", "--socket-dir", sockdir, "http", "--", app, "check", "listen-fds"]),
        ]
    if PRELOAD:
        cmds += [
            ("pb-preload-true", [PB, "exec", "--preload", "--socket-dir", sockdir, "http", "--", TRUE]),
            ("pb-preload-app", [PB, "exec", "--preload", "--socket-dir", sockdir, "http", "--", app, "check",
                                "bind:0.0.0.0:80"]),
        ]
    if not EXEC:
        client = f"{WORK}/recv_handle_check.py"
        with open(client, "w") as f:
            f.write("import socket, sys\nfrom multiprocessing.reduction import recv_handle\n"
                    "with socket.socket(socket.AF_UNIX) as c:\n    c.connect(sys.argv[1])\n"
                    "    fd = recv_handle(c)\n"
                    "s = socket.socket(fileno=fd)\n"
                    "assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)\n")
        cmds += [("python-alone", [PY, "-S", "-c", "pass"]),
                 ("python-recv_handle", [PY, "-S", client, f"{sockdir}/http.sock"])]
    # Check each command once, so a broken set-up is an error rather than a number.
    for name, argv in cmds:
        r = run(argv, user="www", check=False, timeout=20)
        if r.returncode != 0:
            raise RuntimeError(f"item 3: {name} fails: {r.stderr.strip()[-400:]}")
    argv = [f"{BIN}/spawnbench", "60" if Q else "400", "20" if Q else "60"]
    for i, (name, c) in enumerate(cmds):
        argv += ([";;"] if i else []) + [name] + c
    r = run(argv, user="www", timeout=200)
    t = {}
    for m in SPAWN_RE.finditer(r.stdout):
        name, runs, failures, p10, med, p90, mean = m.groups()
        t[name] = {"runs": int(runs), "failures": int(failures), "p10": float(p10 or "nan"),
                   "median": float(med or "nan"), "p90": float(p90 or "nan")}
    stop(s6)

    rows = [[n, f"{t[n]['median'] / 1000:.3f}", f"{t[n]['p10'] / 1000:.3f}", f"{t[n]['p90'] / 1000:.3f}",
             t[n]["runs"], t[n]["failures"]] for n, _ in cmds]
    text = table(["command (as www-data)", "median ms", "p10 ms", "p90 ms", "runs", "failures"], rows)

    def added(a, b):
        return (t[a]["median"] - t[b]["median"]) / 1000

    add = [("authbind (app binds port 82 through the setuid helper)", added("authbind-app", "app-binds-itself")),
           ("authbind, `true` (LD_PRELOAD only, no bind)", added("authbind-true", "true")),
           ("s6-fdholder-retrieve … app", added("s6-retrieve-app", "app-binds-itself")),
           ("s6-fdholder-retrieve … true", added("s6-retrieve-true", "true")),
           ("app fetches from portbinder itself (C client, no extra exec)", added("app-fetch-C", "app-binds-itself"))]
    if EXEC:
        add = [("`portbinder exec http -- true`", added("pb-exec-true", "true")),
               ("`portbinder exec http -- app` (LISTEN_FDS)", added("pb-exec-app", "app-binds-itself"))] + add
    if PRELOAD:
        add = add[:2] + [("`portbinder exec --preload http -- true`", added("pb-preload-true", "true")),
                         ("`portbinder exec --preload http -- app` (app binds 0.0.0.0:80 itself)",
                          added("pb-preload-app", "app-binds-itself"))] + add[2:]
    if not EXEC:
        add.append(("Python `recv_handle` client (stdlib), vs `python3 -S -c pass`",
                    added("python-recv_handle", "python-alone")))
    add.append(("`portbinder --version` (the executable's own start, nothing fetched)", added("pb-version", "true")))
    for i, (label, _) in enumerate(VARIANTS):
        add.append((f"build {label}: `--version`", added(f"variant{i}-version", "true")))
        if EXEC:
            add.append((f"build {label}: `exec http -- true`", added(f"variant{i}-exec-true", "true")))
    FACTS["start"] = {"version": added("pb-version", "true"), "fetch": added("app-fetch-C", "app-binds-itself"),
                      "exec": added("pb-exec-true", "true") if EXEC else None,
                      "preload_extra": (added("pb-preload-app", "app-binds-itself") - added("pb-exec-app", "app-binds-itself"))
                      if PRELOAD else None,
                      "s6": added("s6-retrieve-app", "app-binds-itself"),
                      "exec_app": added("pb-exec-app", "app-binds-itself") if EXEC else None,
                      "preload_app": added("pb-preload-app", "app-binds-itself") if PRELOAD else None,
                      "authbind": added("authbind-app", "app-binds-itself"),
                      "variants": {label: (added(f"variant{i}-version", "true"),
                                           added(f"variant{i}-exec-true", "true") if EXEC else None)
                                   for i, (label, _) in enumerate(VARIANTS)}}
    text += "\n\nAdded time to start an app that holds a listening socket, vs the same app binding an " \
            "unprivileged port itself (or vs `true` alone):\n\n"
    text += table(["how the app gets the privileged port", "added ms (median difference)"],
                  [[a, f"{b:.3f}"] for a, b in add])
    if not EXEC:
        text += "\n\n`portbinder exec` is not in this build: the portbinder rows are a client fetching the socket " \
                "itself (C, and Python's `recv_handle`)."
    section("3. Cost to a starting app (whole-process wall time, spawnbench, interleaved)", text)
    auth = added("authbind-app", "app-binds-itself")
    s6c = added("s6-retrieve-app", "app-binds-itself")
    if EXEC:
        for label, key, base in (("`portbinder exec -- true` added time", "pb-exec-true", "true"),
                                 ("`portbinder exec -- app` added time", "pb-exec-app", "app-binds-itself")):
            v = added(key, base)
            SUMMARY.append((3, label, f"{v:.3f} ms = {v / auth:.2f}x authbind's {auth:.3f}, {v / s6c:.2f}x s6's {s6c:.3f}",
                            "< 1 ms and below both", verdict(v < 1 and v < auth and v < s6c)))
    if PRELOAD:
        v = added("pb-preload-app", "app-binds-itself")
        SUMMARY.append((3, "`portbinder exec --preload -- app` added time",
                        f"{v:.3f} ms = {v / auth:.2f}x authbind's, {v / s6c:.2f}x s6's",
                        "< 1 ms and below both", verdict(v < 1 and v < auth and v < s6c)))
    if not EXEC:
        v = added("app-fetch-C", "app-binds-itself")
        SUMMARY.append((3, "app fetching its socket (no `portbinder exec` yet)", f"{v:.3f} ms",
                        "< 1 ms and below both", verdict(v < 1 and v < auth and v < s6c)))


# ---------------------------------------------------------------------------------------------
# 4-6: HTTP load with wrk
# ---------------------------------------------------------------------------------------------

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


def start_app(source, user="www", via_exec=None, sockdir=None):
    """`app serve SOURCE`; with via_exec=NAME, through `portbinder exec NAME -- app serve listen-fds`."""
    if via_exec:
        argv = [PB, "exec", "--socket-dir", sockdir, via_exec, "--", f"{BIN}/app", "serve", "listen-fds"]
    else:
        argv = [f"{BIN}/app", "serve", source]
    p = popen(argv, user=user, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = p.stdout.readline()
    if not line.startswith(b"ready"):
        try:
            p.wait(5)
            err = p.stderr.read().decode(errors="replace").strip()
        except subprocess.TimeoutExpired:
            err = "(still running)"
        raise RuntimeError(f"app did not start: {err}")
    return p


def pb_app(name, sockdir):
    """An app worker with binding NAME: through `portbinder exec` when it exists, else fetching itself."""
    if EXEC:
        return start_app(None, via_exec=name, sockdir=sockdir)
    return start_app(f"fetch:{sockdir}/{name}.sock")


def item4():
    rounds = 3 if Q else 20
    proxy_rounds = 2 if Q else 5
    secs = 1
    direct = start_app("bind:0.0.0.0:8080")
    twin = start_app("bind:0.0.0.0:8081")
    viapb = pb_app("http", f"{SOCK}/run")
    proxyd = popen(["systemd-socket-activate", "-l", "0.0.0.0:83", "/lib/systemd/systemd-socket-proxyd",
                    "127.0.0.1:8080"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    socat = popen(["socat", "TCP-LISTEN:84,fork,reuseaddr,backlog=1024", "TCP:127.0.0.1:8080"],
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    variants = {"bound by itself (0.0.0.0:8080)": 8080, "bound by itself, a twin (0.0.0.0:8081): A/A, the noise": 8081,
                "socket from portbinder (0.0.0.0:80)": 80,
                "systemd-socket-proxyd on :83 → :8080": 83, "socat on :84 → :8080": 84}

    def up(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False
    for port in variants.values():
        wait_until(lambda: up(port), 10, f"port {port}")
    names = list(variants)
    serving = {names[0]: [direct.pid], names[1]: [twin.pid], names[2]: [viapb.pid],
               names[3]: [proxyd.pid, direct.pid], names[4]: [socat.pid, direct.pid]}
    res = {(n, c): [] for n in names for c in (False, True)}
    for n in names:
        run(wrk(variants[n], 1), timeout=30)  # warm-up
    deadline = time.monotonic() + (60 if Q else 200)
    core, proxies = names[:3], names[3:]
    for r in range(rounds):
        if time.monotonic() > deadline:
            break
        # The proxies are far from 1 and need fewer rounds; the three set-ups whose ratio is close to
        # 1 get every round. Proxies run in the first rounds only, so their rounds pair with the base's.
        this = core + (proxies if r < proxy_rounds else [])
        for close in (False, True):
            for n in this[r % len(this):] + this[:r % len(this)]:
                c0 = tree_cpu_s(serving[n])
                out = parse_wrk(run(wrk(variants[n], secs, close=close), timeout=60).stdout)
                out["cpu_us"] = (tree_cpu_s(serving[n]) - c0) / max(out["requests"], 1) * 1e6
                res[(n, close)].append(out)
    for p in (direct, twin, viapb, proxyd, socat):
        stop(p)
    rows, ratio = [], {}
    base = names[0]
    for close in (False, True):
        for n in names:
            rs = res[(n, close)]
            per_round = [a["rps"] / b["rps"] for a, b in zip(rs, res[(base, close)]) if b["rps"]]
            ratio[(n, close)] = (median(per_round), min(per_round), max(per_round))
            cpu = median([x["cpu_us"] for x in rs])
            cpu_base = median([x["cpu_us"] for x in res[(base, close)]])
            rows.append(["new connection per request" if close else "keep-alive (16 connections)", n,
                         f"{median([x['rps'] for x in rs]):.0f}",
                         f"{ratio[(n, close)][0]:.3f} [{ratio[(n, close)][1]:.2f}–{ratio[(n, close)][2]:.2f}]",
                         f"{cpu:.1f} ({cpu / cpu_base:.2f}x)", sum(x["errors"] for x in rs), len(rs)])
    text = table(["load", "the same server (bench/src/app.c), its socket", "requests/s (median)",
                  "ratio to bound by itself [min–max]", "server-side CPU µs/request (vs bound by itself)",
                  "errors", "rounds"], rows)
    text += (f"\n\nwrk -t1 -c16 -d{secs}s, one round = every set-up once, order rotated each round (the proxies "
             f"in the first {proxy_rounds} rounds only). The app is "
             f"started {'through `portbinder exec http -- app serve listen-fds`' if EXEC else 'as `app serve fetch:…/http.sock`'} "
             "as www-data. Server-side CPU counts the app and, behind a proxy, the proxy (with socat's forked "
             "children); wrk's own is left out. Once granted, the socket *is* the kernel's listening socket: "
             "portbinder is not on the data path, so its ratio is 1 within noise; a proxy adds a hop per "
             "request or per connection.")
    section("4. Data path: HTTP requests/s (wrk) of one server, by where its socket comes from", text)
    for close in (False, True):
        v = ratio[(names[2], close)][0]
        aa = ratio[(names[1], close)][0]
        px = ratio[(names[3], close)][0]
        sc = ratio[(names[4], close)][0]
        cpu = median([x["cpu_us"] for x in res[(names[2], close)]]) / median([x["cpu_us"] for x in res[(base, close)]])
        FACTS.setdefault("data", {})[close] = (v, aa, px, sc, cpu)
        ok = v >= 0.98
        note = "" if ok else (" (within noise: the A/A twin is as far off)" if abs(1 - aa) >= abs(1 - v) else "")
        SUMMARY.append((4, f"requests/s vs bound by itself, {'new connection per request' if close else 'keep-alive'}",
                        f"{v:.3f}, CPU/request {cpu:.2f}x (A/A twin {aa:.3f}; systemd-socket-proxyd {px:.2f}, "
                        f"socat {sc:.2f})", "≥ 0.98", verdict(ok) + note))


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


def item5():
    secs = 5 if Q else 8
    at = [secs * k / 5 for k in (1, 2, 3, 4)]  # 4 restarts, evenly spread
    results = []
    for close in (False, True):
        mode = "new connection per request" if close else "keep-alive"
        # A. portbinder: 4 workers share one binding; each is replaced (new one first, then the
        #    old one drains), one at a time.
        workers = [pb_app("http", f"{SOCK}/run") for _ in range(4)]
        load = Load(80, secs, close)
        for i, t in enumerate(at):
            load.at(t)
            new = pb_app("http", f"{SOCK}/run")
            stop(workers[i])
            workers[i] = new
        r = load.result()
        for w in workers:
            stop(w)
        results.append((mode, "portbinder: 4 workers share the binding, replaced one at a time", r,
                        "new worker fetches, then the old one drains"))
        # B. one process that binds the port itself, restarted (stop, then start).
        srv = start_app("bind:0.0.0.0:85", user=None)
        load = Load(85, secs, close)
        gaps = []
        for t in at:
            load.at(t)
            t0 = time.monotonic()
            stop(srv)
            srv = start_app("bind:0.0.0.0:85", user=None)
            gaps.append(time.monotonic() - t0)
        r = load.result()
        stop(srv)
        results.append((mode, "one process binding the port itself, restarted", r,
                        f"port closed for {median(gaps) * 1000:.1f} ms per restart (median)"))
        # C. the same with SO_REUSEPORT: the new process binds beside the old one, then the old drains.
        srv = start_app("reuseport:0.0.0.0:86", user=None)
        load = Load(86, secs, close)
        for t in at:
            load.at(t)
            new = start_app("reuseport:0.0.0.0:86", user=None)
            stop(srv)
            srv = new
        r = load.result()
        stop(srv)
        results.append((mode, "one process binding itself with SO_REUSEPORT, new one started first", r,
                        "connections queued on the old socket are reset when it closes"))
    text = table(["load", "set-up (4 restarts during the run)", "requests", "requests/s", "failed",
                  "wrk errors", "note"], restart_rows(results))
    text += (f"\n\nwrk -t1 -c16 -d{secs}s --timeout 2s; restarts at {', '.join(f'{t:.1f}' for t in at)} s. A "
             "worker stopping gets SIGTERM: it stops accepting, answers the next request on each of its "
             "connections with `Connection: close`, then exits (bench/src/app.c).")
    section("5. Rolling restart under load", text)
    for mode, name, r, _ in results:
        FACTS.setdefault("rolling", {}).setdefault(mode, {})[name.split(":")[0].split(" with")[0]] = r["errors"]
    for mode, name, r, _ in results:
        if name.startswith("portbinder"):
            SUMMARY.append((5, f"rolling restart of 4 workers, {mode}: failed requests", str(r["errors"]),
                            "0", verdict(r["errors"] == 0)))
    for mode, name, r, _ in results:
        if name.startswith("one process binding the port itself"):
            SUMMARY.append((5, f"(beside it) one self-binding process restarted 4 times, {mode}", str(r["errors"]),
                            "(reference)", ""))


class Manager:
    """Plays systemd's part for one daemon, with its real protocols: `socket_unit` holds listening
    sockets for good, as a .socket unit does; `fdstore` gives the daemon a NOTIFY_SOCKET and keeps
    what it sends with FDSTORE=1/FDNAME= (FDSTOREREMOVE=1 drops a name), as FileDescriptorStoreMax=
    does. Every start passes the held and stored sockets with LISTEN_FDS/LISTEN_FDNAMES/LISTEN_PID."""

    def __init__(self, tag, fdstore=False, socket_unit=()):
        self.held = list(socket_unit)  # [(name, socket)]
        self.store = {}                # name -> [socket]
        self.notify = None
        self.messages = []
        if fdstore:
            self.path = f"{SOCK}/notify-{tag}.sock"
            self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.notify.bind(self.path)
            os.chmod(self.path, 0o666)  # the daemon sends after dropping to nobody
            self.notify.setblocking(False)

    def drain(self):
        while self.notify:
            try:
                msg, anc, _flags, _ = self.notify.recvmsg(4096, socket.CMSG_SPACE(253 * 4))
            except BlockingIOError:
                return
            fds = []
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds += [int.from_bytes(data[i:i + 4], sys.byteorder) for i in range(0, len(data) - 3, 4)]
            fields = dict(l.split("=", 1) for l in msg.decode(errors="replace").split("\n") if "=" in l)
            self.messages.append(fields)
            name = fields.get("FDNAME", "stored")
            if fields.get("FDSTORE") == "1":
                self.store.setdefault(name, []).extend(socket.socket(fileno=fd) for fd in fds)
            else:
                for fd in fds:
                    os.close(fd)
            if fields.get("FDSTOREREMOVE") == "1":
                for sk in self.store.pop(name, []):
                    sk.close()

    def spawn_args(self, argv):
        self.drain()
        passed = self.held + [(n, sk) for n, sks in self.store.items() for sk in sks]
        env = dict(os.environ)
        if self.notify:
            env["NOTIFY_SOCKET"] = self.path
        if passed:
            env["LISTEN_FDS"] = str(len(passed))
            env["LISTEN_FDNAMES"] = ":".join(n for n, _ in passed)
        src = [sk.fileno() for _, sk in passed]

        def place():  # in the child, before exec: the sockets at 3, 4, ...
            for i, fd in enumerate(src):
                os.dup2(fd, 500 + i)
            for i in range(len(src)):
                os.dup2(500 + i, 3 + i)
                os.close(500 + i)
        # LISTEN_PID must be the daemon's pid: sh sets it to its own, then execs the daemon.
        return {"args": ["/bin/sh", "-c", 'LISTEN_PID=$$ exec "$@"', "sh"] + argv, "env": env,
                "preexec_fn": place, "close_fds": False}  # Python opens everything else O_CLOEXEC


def item6():
    secs = 6 if Q else 8
    results, notes = [], []
    setups = [("self-bound", "portbinder binding the port itself (no service manager)"),
              ("fdstore", "portbinder with the systemd fd store (FDSTORE=1, emulated by the harness)"),
              ("socket-unit", "socket-activated portbinder (the harness holds the socket like a .socket unit)")]
    for close in (False, True):
        mode = "new connection per request" if close else "keep-alive"
        for k, (kind, label) in enumerate(setups):
            sockdir = f"{SOCK}/run6{kind}{int(close)}"
            port = 87 + k
            args = ["--bind", f"live=0.0.0.0:{port}", "--group", "www-data", "--user", "nobody",
                    "--socket-dir", sockdir, "--log", "syslog"]
            manager = None
            if kind == "fdstore":
                manager = Manager(f"{kind}{int(close)}", fdstore=True)
            elif kind == "socket-unit":
                held = socket.socket()
                held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                held.bind(("0.0.0.0", port))
                held.listen(1024)
                manager = Manager(kind, socket_unit=[("live", held)])
            daemon = Portbinder(args, manager=manager).start()
            if manager:
                manager.drain()
            stored = sum(len(v) for v in manager.store.values()) if manager else 0
            workers = [pb_app("live", sockdir) for _ in range(2)]
            load = Load(port, secs, close)
            load.at(secs * 0.25)
            daemon.p.kill()  # kill -9
            daemon.p.wait()
            load.at(secs * 0.35)
            restart = Portbinder(args, manager=manager)
            try:
                restart.start(timeout=5)
                what = f"restarted, ready in {restart.ready_s * 1000:.0f} ms"
                start_line = next((l for l in restart.lines() if l.startswith("event=start")), "")
                found = re.search(r"adopted=\d+", start_line)
                if found:
                    what += f" (`{found.group(0)}`)"
            except RuntimeError:
                err = [l.strip() for l in restart.stderr().splitlines() if l.strip()]
                what = f"restart failed, exit {restart.p.returncode}"
                restart.p = None
                if err:
                    notes.append(f"{kind} daemon restarted while the apps hold the socket: `"
                                 + " / ".join(err)[:400] + "`")
            if kind == "fdstore":
                what = f"{stored} socket(s) in the store before the kill; " + what
            # A rolling restart of one worker after the daemon restart: can new app instances start?
            load.at(secs * 0.6)
            try:
                new = pb_app("live", sockdir)
                stop(workers[0])
                workers[0] = new
                what += "; then a worker was replaced: fetching works"
            except RuntimeError as e:
                what += "; then a new worker cannot get the socket"
                notes.append(f"{kind}: a new worker after the failed restart: `{str(e)[:300]}`")
            r = load.result()
            for w in workers:
                stop(w)
            if restart.p:
                restart.stop()
            if manager:
                for sk in [sk for _, sk in manager.held] + [sk for v in manager.store.values() for sk in v]:
                    sk.close()
                if manager.notify:
                    manager.notify.close()
            results.append((mode, label, r, f"kill -9 at {secs * 0.25:.1f} s; {what}"))
    text = table(["load", "set-up (2 workers serving; kill -9 of the daemon, then a restart)", "requests",
                  "requests/s", "failed", "wrk errors", "what happened"], restart_rows(results))
    if notes:
        text += "\n\n" + "\n".join(f"- {n}" for n in sorted(set(notes)))
    text += ("\n\nThe workers keep serving through the daemon's death: they hold the listening socket and the "
             "daemon is not on the data path. What a restart needs is the socket back: a daemon that bound it "
             "itself cannot bind it again while the apps hold it (EADDRINUSE), so until every app has exited no "
             "new instance can be started; with the fd store (or a .socket unit) the restarted daemon gets the "
             "socket through LISTEN_FDS and adopts it. The fd store and the .socket unit are played by the "
             "harness (bench/bench.py, class Manager) with systemd's own protocols, since no systemd runs as "
             "PID 1 here.")
    section("6. Daemon restart under load (kill -9 of portbinder while apps serve)", text)
    for kind, label in setups:
        mine = [(mode, r, note) for mode, lab, r, note in results if lab == label]
        failed = ", ".join(f"{r['errors']} ({mode})" for mode, r, _ in mine)
        ok = all(r["errors"] == 0 for _, r, _ in mine)
        restarted = all("restarted" in note for _, _, note in mine)
        FACTS.setdefault("restart", {})[kind] = (sum(r["errors"] for _, r, _ in mine), restarted)
        after = ("restart adopts the socket, new workers start" if restarted else
                 "restart fails (EADDRINUSE): no new worker can start until every app exits")
        SUMMARY.append((6, f"kill -9 of the daemon under load, {label.split(' (')[0]}",
                        f"failed requests: {failed}; {after}", "0 failed",
                        verdict(ok) + ("" if restarted else " (but see the restart)")))

# ---------------------------------------------------------------------------------------------

def analysis():
    """Why each missed target is missed, from this run's own figures (profiling notes that need a
    changed build are in bench/README.md)."""
    missed = {item for item, _w, _r, _t, v in SUMMARY if "missed" in v}
    out = []
    g = FACTS.get("grant")
    if 1 in missed and g:
        pb, mn = g["calls"].get("portbinder", {}), g["calls"].get("fdserver_min.c", {})
        cpu = g["cpu"]
        nget, nclose = round(pb.get("getsockopt", 0)), round(pb.get("close", 0))
        opts = ["SO_PEERCRED", "SO_PEERGROUPS", "SO_PEERPIDFD"][:nget]
        pidfd = nget >= 3
        text = (
            f"**Grant rate (item 1).** The grant path is almost all kernel work, so it costs what its system "
            f"calls cost: portbinder makes {sum(pb.values()):.1f} per grant where fdserver_min.c makes "
            f"{sum(mn.values()):.1f} (table in item 1). Per connection it reads {nget} socket option"
            f"{'s' if nget != 1 else ''} ({', '.join(opts)}), closes {nclose} descriptor{'s' if nclose != 1 else ''} "
            f"({'the connection and the pidfd' if pidfd and nclose >= 2 else 'the connection'}), and when each "
            f"connection finds it waiting (one client, an idle machine) it also makes a poll(2) and an accept4 "
            f"that finds the queue empty per grant (in this run's count: poll {pb.get('poll', 0):.2f}, accept4 "
            f"{pb.get('accept4', 0):.2f} per grant; under load connections queue and are taken in batches). Its CPU per "
            f"grant is {cpu[('portbinder', 1)]:.1f} µs (1 client) and {cpu[('portbinder', 4)]:.1f} µs (4 clients) "
            f"against {cpu[('fdserver_min.c', 1)]:.1f} and {cpu[('fdserver_min.c', 4)]:.1f} µs for the minimal "
            "server. ")
        if pidfd:
            text += (
                "The pidfd (pinned before answering so that the audit line's `comm=` names the right process) "
                "is allocated and freed on every grant although the rate limiter lets only the first 20 lines "
                "per 10 s through, and the supplementary groups are read even when the uid or primary gid "
                "already decide. What would close most of it: ask the rate limiter before answering and take "
                "the pidfd only for a line that will be written; read SO_PEERGROUPS only when the uid and "
                "primary gid do not decide. Measured with a build so changed (three A/B runs, bench/README.md, "
                "\"Profiling\"): 2 fewer system calls per grant, CPU per grant down 10-15 % with 1 client and "
                "about 30 % with 4, grant rate 0.88-1.03x fdserver_min.c with 4 clients and 0.79-0.84x with 1 "
                "(what remains with 1 client is the poll(2) and the empty accept4 per connection that a "
                "blocking accept loop avoids). ")
        else:
            text += (
                "What remains to remove: SO_PEERGROUPS when the uid or primary gid already decide, and, with "
                "one client, the poll(2) and the empty accept4 per connection that a blocking accept loop "
                "avoids. ")
        text += (
            "Against fdserver.py the two make about the same number of system calls per grant (its Python "
            "overhead is small next to them), so being 1.3x faster than the gist needs calls removed.")
        out.append(text)
    if g and g["cpu"].get(("portbinder, 1,000 bindings", 1), 0) > 1.5 * g["cpu"][("portbinder", 1)]:
        cpu = g["cpu"]
        out.append(
            f"**Grant rate with 1,000 bindings** (no target, but it matters). Every wake-up of the serve loop "
            f"builds a pollfd array of all bindings and polls them all: CPU per grant "
            f"{cpu[('portbinder, 1,000 bindings', 1)]:.1f} µs with one client, against "
            f"{cpu[('portbinder', 1)]:.1f} µs with one binding (a perf profile puts about 70 % of the daemon's "
            "time in do_sys_poll). epoll, with every socket registered once, would make the cost per grant "
            "independent of the number of bindings.")
    r = FACTS.get("rss")
    if 2 in missed and r:
        p = r["parts"]
        v = "; ".join(f"{k}: {kib / 1024:.2f} MiB" for k, kib in r["variants"].items())
        out.append(
            f"**Memory (item 2).** Of the {r['pb'] / 1024:.2f} MiB RSS with one binding, "
            f"{p.get('anonymous', 0) / 1024:.2f} MiB is the daemon's own memory (heap, stacks); the rest is "
            f"mapped files: {p.get('program', 0) / 1024:.2f} MiB of its {r['size'] / 1e6:.1f} MB executable, "
            f"{p.get('libc', 0) / 1024:.2f} MiB of glibc and {p.get('other files', 0) / 1024:.2f} MiB of ld.so "
            "and libgcc_s, page-cache pages shared with every other user of those files. The kernel maps file "
            "pages around each fault, so the resident part of the executable follows its size more than the "
            "code the loop runs; fdserver_min.c's executable is 16 KB. What closes it is a smaller image: "
            "opt-level \"z\", LTO, one codegen unit, strip, and above all static linking, which drops the "
            "shared glibc, ld.so and libgcc_s mappings for the few pieces of libc the daemon uses"
            + (f" (this run: {v})" if v else " (bench/run --variants measures both)") + ". A static glibc build "
            "resolves users and groups only from /etc/passwd and /etc/group (NSS `files`) unless the NSS "
            "modules of the same glibc are installed, which matters for a daemon that names users.")
    st = FACTS.get("start")
    if 3 in missed and st:
        v = "; ".join(f"{k}: `--version` +{a:.3f} ms, `exec -- true` +{b:.3f} ms" for k, (a, b) in st["variants"].items()
                      if b is not None)
        out.append(
            f"**Cost to a starting app (item 3).** The fetch itself is cheap: a C client that fetches its socket "
            f"adds {st['fetch']:.3f} ms. Most of what `portbinder exec` adds ({st['exec']:.3f} ms) is starting "
            f"the portbinder executable at all: `portbinder --version` alone adds {st['version']:.3f} ms over "
            "`true` (loading libgcc_s and glibc for a large position-independent executable, relocating it, "
            "Rust and clap start-up), where s6-fdholder-retrieve is a small C program. "
            + (f"`--preload` adds another {st['preload_extra']:.3f} ms: the shim is a Rust shared library the "
               "dynamic linker loads into the app. " if st.get("preload_extra") is not None else "")
            + "What would close it: a static, size-optimised executable"
            + (f" (this run: {v}" + ("; the static build's `exec -- true` is under 1 ms and below both "
                                      "authbind and s6"
                                      if any(b is not None and b < 1 and b < st["s6"] and b < st["authbind"]
                                             for k, (a, b) in st["variants"].items() if "static" in k) else "")
               + ")" if v else " (bench/run --variants measures one)")
            + ", or a small dedicated `exec` client without the daemon's code and argument parser; for "
            "`--preload`, a C shim (authbind's library is C).")
    if 4 in missed:
        out.append(
            "**Data path (item 4).** Where the ratio of requests/s is below 0.98, look at the CPU per request "
            "and at the A/A twin in the same table: once granted, the socket is the kernel's own listening "
            "socket and portbinder is not on the path, so the server-side CPU per request is the same; a "
            "ratio off by a few percent on this shared machine is noise of the same size as the twin's.")
    if 6 in missed or any(i == 6 and "see the restart" in v for i, _w, _r, _t, v in SUMMARY):
        out.append(
            "**Daemon restart (item 6).** No request fails when the daemon dies: the apps hold the socket. "
            "But a daemon that bound the port itself cannot bind it again while the apps hold it "
            "(EADDRINUSE), so it stays down and no new app instance can start until all have exited. Run it "
            "with the systemd fd store (FileDescriptorStoreMax=, the set-up measured above) or from a .socket "
            "unit: then the restart adopts the socket in a few milliseconds and rolling restarts go on.")
    if out:
        section("Why the missed targets are missed, and what would close them", "\n\n".join(out))


def machine():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    debian = open("/etc/debian_version").read().strip() if os.path.exists("/etc/debian_version") else "?"
    rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    rustc = os.environ.get("BENCH_RUSTC", "")
    return {"cpu": model, "cores": os.cpu_count(), "kernel": platform.release(), "debian": debian,
            "commit": rev + ("+changes" if dirty else ""), "rustc": rustc or "?",
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "load": open("/proc/loadavg").read().split()[0]}


def main():
    m = machine()
    log(f"{m['cpu']}, {m['cores']} cores, kernel {m['kernel']}, portbinder {m['commit']}; "
        f"portbinder exec: {'yes' if EXEC else 'no'}, --preload: {'yes' if PRELOAD else 'no'}")
    anchor_rss = None
    pb_http = None
    try:
        if 1 in ONLY:
            log("1. grant rate")
            anchor_rss = item1()
        if 2 in ONLY:
            log("2. memory and start-up")
            item2(anchor_rss)
        if ONLY & {3, 4, 5}:
            pb_http = Portbinder(["--bind", "http=0.0.0.0:80", "--group", "www-data", "--user", "nobody",
                                  "--socket-dir", f"{SOCK}/run", "--log", "syslog"]).start()
        if 3 in ONLY:
            log("3. cost to a starting app")
            item3(pb_http)
        if 4 in ONLY:
            log("4. data path")
            item4()
        if 5 in ONLY:
            log("5. rolling restart")
            item5()
        if 6 in ONLY:
            log("6. daemon restart")
            item6()
        analysis()
    finally:
        for p in reversed(PROCS):
            if p.poll() is None:
                p.kill()
                p.wait()
    m["load_end"] = open("/proc/loadavg").read().split()[0]
    elapsed = time.monotonic() - T_START
    summary = table(["item", "what", "result", "target", "verdict"], SUMMARY)
    head = (f"Machine: {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}, Debian {m['debian']}, {m['rustc']}. "
            f"Date: {m['date']}. portbinder {m['commit']}. Load average {m['load']} at start, "
            f"{m['load_end']} at the end (the machine is shared: only ratios between set-ups measured "
            f"side by side, interleaved, mean anything). Run took {elapsed:.0f} s"
            f"{' (--quick: fewer rounds)' if Q else ''}.")
    print("\n## Summary\n\n" + head + "\n\n" + summary, flush=True)
    with open(ARGS.results, "w") as f:
        f.write("# portbinder benchmark results\n\n"
                "Written by `bench/run` (run it as root from the repository; see bench/README.md). "
                "Every figure below comes from that one run.\n\n" + head + "\n\n## Summary\n\n" + summary + "\n")
        for title, text in SECTIONS:
            f.write(f"\n## {title}\n\n{text}\n")
    log(f"wrote {ARGS.results}")
    if ARGS.readme:
        update_readme(ARGS.readme, m)


def readme_rows():
    """The short table of README.md: one line per measured question, ratios where the target is one."""
    rows = []

    def v(ok):
        return "met" if ok else "missed"
    g = FACTS.get("grant")
    if g:
        r = g["ratios"]
        a1, a4 = r[(1, "portbinder", "fdserver_min.c")][0], r[(4, "portbinder", "fdserver_min.c")][0]
        b1, b4 = r[(1, "portbinder", "fdserver.py")][0], r[(4, "portbinder", "fdserver.py")][0]
        rows.append(["grant rate vs the minimal C server, 1 / 4 clients (audit log on)",
                     f"{rfmt(a1, 0.9)}x / {rfmt(a4, 0.9)}x", "≥ 0.9x", v(min(a1, a4) >= 0.9)])
        rows.append(["grant rate vs the gist (fdserver.py), 1 / 4 clients", f"{rfmt(b1, 1.3)}x / {rfmt(b4, 1.3)}x",
                     "≥ 1.3x", v(min(b1, b4) >= 1.3)])
    r = FACTS.get("rss")
    if r:
        an = r.get("anchors", {})
        beside = [", ".join(f"{n} {an[n] / 1024:.1f}" for n in ("fdserver.py", "fdserver_min.c") if n in an)]
        static = [kib for k, kib in r.get("variants", {}).items() if "static" in k]
        if static:
            beside.append(f"a static size-optimised build: {static[0] / 1024:.1f} with 1")
        beside = "; ".join(b for b in beside if b)
        rows.append(["RSS with 1 / 1,000 bindings, MiB" + (f" ({beside})" if beside else ""),
                     f"{r['pb'] / 1024:.1f} / {r['pb1000'] / 1024:.1f}", "< 2 / < 8",
                     v(r["pb"] < 2048 and r["pb1000"] < 8192)])
        rows.append(["start-up to READY, 1,000 bindings vs 1 (per-binding cost, 100→1,000 vs 10→100)",
                     f"{r['startup_x']:.0f}x ({r['linear']:.2f})", "linear at most", v(r["linear"] < 1.5)])
    st = FACTS.get("start")
    if st and st["exec"] is not None:
        shown = [("`exec -- true`", st["exec"]), ("`exec -- app`", st["exec_app"])]
        if st.get("preload_app") is not None:
            shown.append(("`exec --preload -- app`", st["preload_app"]))
        static = [b for k, (a, b) in st["variants"].items() if "static" in k and b is not None]
        rows.append([f"added start time of an app, ms: {' / '.join(n for n, _ in shown)} "
                     f"(authbind {st['authbind']:.2f}, s6-fdholder-retrieve {st['s6']:.2f}"
                     + (f"; a static size-optimised build: `exec -- true` {static[0]:.2f}" if static else "") + ")",
                     " / ".join(rfmt(x, 1.0) for _, x in shown), "< 1 and below both",
                     v(all(x < 1 and x < st["authbind"] and x < st["s6"] for _, x in shown))])
    d = FACTS.get("data")
    if d:
        ka, cl = d.get(False), d.get(True)
        rows.append([f"requests/s vs the server binding itself, keep-alive / new connection per request "
                     f"(systemd-socket-proxyd {ka[2]:.2f} / {cl[2]:.2f}, socat {ka[3]:.2f} / {cl[3]:.2f})",
                     f"{rfmt(ka[0], 0.98)} / {rfmt(cl[0], 0.98)} (CPU per request {ka[4]:.2f}x / {cl[4]:.2f}x)",
                     "≥ 0.98",
                     v(min(ka[0], cl[0]) >= 0.98) + ("" if min(ka[0], cl[0]) >= 0.98 else (
                         " (within noise: the A/A twin is as far off)"
                         if all(abs(1 - x[1]) >= abs(1 - x[0]) for x in (ka, cl) if x[0] < 0.98) else ""))])
    ro = FACTS.get("rolling")
    if ro:
        pb = sum(x.get("portbinder", 0) for x in ro.values())
        own = sum(x.get("one process binding the port itself, restarted", 0) for x in ro.values())
        rows.append([f"failed requests, rolling restart of 4 workers under load (one self-binding process "
                     f"restarted instead: {own})", str(pb), "0", v(pb == 0)])
    rs = FACTS.get("restart")
    if rs:
        fs, sb = rs.get("fdstore"), rs.get("self-bound")
        if fs:
            rows.append(["failed requests, kill -9 + restart of the daemon under load, with the systemd fd store",
                         f"{fs[0]}" + ("" if fs[1] else ", restart failed"), "0", v(fs[0] == 0 and fs[1])])
        if sb:
            rows.append(["… without a service manager holding the socket", f"{sb[0]}" + (
                "; the restart fails (EADDRINUSE)" if not sb[1] else ""), "0", v(sb[0] == 0) + (
                "" if sb[1] else ", but no restart")])
    return rows


def update_readme(path, m):
    rows = readme_rows()
    block = (f"Machine: {m['cpu']}, {m['cores']} cores, shared with other work and noisy; Linux {m['kernel']}, "
             f"Debian {m['debian']}. Date: {m['date'][:10]}. Every comparison is a ratio between set-ups measured "
             "side by side in one run, interleaved; the absolute figures (MiB, ms) are where the target itself "
             "is absolute. Reproduce with `bench/run --readme` (as root, about 6 minutes; it installs what it "
             "needs and works in its own namespaces). Full output: [bench/RESULTS.md](bench/RESULTS.md); "
             "method and profiles: [bench/README.md](bench/README.md).\n\n"
             + table(["what", "portbinder", "target", ""], rows) + "\n")
    text = open(path).read()
    begin, end = "<!-- bench/run: begin -->", "<!-- bench/run: end -->"
    if begin in text and end in text:
        pre, rest = text.split(begin, 1)
        post = rest.split(end, 1)[1]
        text = pre + begin + "\n" + block + end + post
    else:
        text = text.rstrip("\n") + "\n\n## Performance\n\n" + begin + "\n" + block + end + "\n"
    with open(path, "w") as f:
        f.write(text)
    log(f"updated the Performance section of {path}")


main()
