"""System calls per grant of a granting server, counted while fdbench runs.

A grant is almost all kernel work, so the count of system calls per grant explains the grant
rate; perf's syscall tracepoints are used when perf works because they barely slow the daemon.
"""
import signal
import subprocess
import time

from .config import WORK
from .fdbench import fdbench
from .procs import popen


def perf_works():
    try:
        return subprocess.run(["perf", "stat", "-e", "syscalls:sys_enter_close", "-x,", "/usr/bin/true"],
                              capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


PERF = perf_works()


def syscalls_per_grant(pid, sock, grants=4000, threads=1):
    """The daemon's system calls per grant during a short fdbench run (`threads` clients): counted
    by the kernel's syscall tracepoints (perf stat, which costs the daemon almost nothing) when perf
    works, else by strace -c (which slows the daemon, so connections queue and accepts batch more)."""
    out = f"{WORK}/calls-{pid}-{threads}.txt"
    if PERF:
        argv = ["perf", "stat", "-x,", "-o", out, "-e", "syscalls:sys_enter_*", "-p", str(pid)]
    else:
        argv = ["strace", "-c", "-f", "-q", "-o", out, "-p", str(pid)]
    tracer = popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # attached
    fdbench(sock, grants, threads)
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
