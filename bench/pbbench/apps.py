"""The app of items 4 to 6 (bench/src/app.c `serve`), started and ready to answer.

An app is ready when it prints `ready`; started through `portbinder exec` when this build has it,
so the data path and the restarts are measured the way an app would be deployed.
"""
import subprocess

from .config import BIN, PB
from .daemon import EXEC
from .procs import popen


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
