"""Figures read from /proc: CPU time, RSS and its split by mapping, and the median of a series.

The servers measured are other processes, so their cost is read from the kernel's accounting
rather than timed from outside; that is what lets CPU per grant or per request be compared when
the shared machine makes wall-clock rates noisy.
"""
import os
import re
import statistics


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


def smaps_by_kind(pid):
    """{kind of mapping: {"Rss": KiB, "Pss": KiB, "Private": KiB}} from /proc/PID/smaps, the kinds
    being the program's own file, libc, other files and anonymous memory."""
    exe = os.path.realpath(f"/proc/{pid}/exe")
    out, name = {}, None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+$", parts[0]):
                path = parts[5] if len(parts) > 5 else ""
                name = ("program" if path == exe else "libc" if "/libc.so" in path
                        else "other files" if path.startswith("/") else "anonymous")
                out.setdefault(name, {"Rss": 0, "Pss": 0, "Private": 0})
            elif parts[0] in ("Rss:", "Pss:"):
                out[name][parts[0][:-1]] += int(parts[1])
            elif parts[0] in ("Private_Clean:", "Private_Dirty:"):
                out[name]["Private"] += int(parts[1])
    return out


def rss_breakdown(pid):
    """RSS in KiB per kind of mapping: the program's own file, libc, other libraries, anonymous."""
    return {k: v["Rss"] for k, v in smaps_by_kind(pid).items()}


def pss_uss(pid):
    """(PSS, USS, {kind of mapping: (PSS, USS)}) in KiB, from /proc/PID/smaps: PSS shares each page
    out between the processes that map it, USS counts the pages no other process maps (for a file's
    pages, only because no other process maps that file right now)."""
    kinds = {k: (v["Pss"], v["Private"]) for k, v in smaps_by_kind(pid).items()}
    return sum(p for p, _ in kinds.values()), sum(u for _, u in kinds.values()), kinds
