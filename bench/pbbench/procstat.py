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


def pss_uss(pid):
    """(PSS, USS, {kind of mapping: (PSS, USS)}) in KiB, from /proc/PID/smaps: PSS shares each page
    out between the processes that map it, USS counts the pages no other process maps (for a file's
    pages, only because no other process maps that file right now)."""
    exe = os.path.realpath(f"/proc/{pid}/exe")
    out, name = {}, None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+$", parts[0]):
                path = parts[5] if len(parts) > 5 else ""
                name = ("program" if path == exe else "libc" if "/libc.so" in path
                        else "other files" if path.startswith("/") else "anonymous")
                out.setdefault(name, [0, 0])
            elif parts[0] == "Pss:":
                out[name][0] += int(parts[1])
            elif parts[0] in ("Private_Clean:", "Private_Dirty:"):
                out[name][1] += int(parts[1])
    return (sum(v[0] for v in out.values()), sum(v[1] for v in out.values()),
            {k: tuple(v) for k, v in out.items()})
