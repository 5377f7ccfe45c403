"""Starting and stopping the run's processes, as root or as www-data.

Every long-running process goes through popen() and is remembered in PROCS, so that kill_all()
at the end leaves nothing behind even when an item fails half-way (the PID namespace of bench/run
would kill them too, but only once the whole run is over).
"""
import signal
import subprocess
import time

from .config import WWW

PROCS = []  # every long-running process started, stopped at the end


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


def kill_all():
    """Kills whatever the run started and is still running, newest first."""
    for p in reversed(PROCS):
        if p.poll() is None:
            p.kill()
            p.wait()
