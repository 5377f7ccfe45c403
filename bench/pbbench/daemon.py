"""The portbinder daemon under test: the Portbinder handle, its config files, its syslog.

Readiness is the daemon's own `event=ready` line (in the private rsyslogd's file, or on a pipe),
so every item starts it the same way and start-up time is measured where the daemon says it is
ready. EXEC and PRELOAD record what this build's `portbinder exec` offers, since the items
measure what exists and say so when it does not.
"""
import os
import subprocess
import time

from .config import PB, SYSLOG, WORK
from .procs import popen, stop, wait_until


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


def write_config(path, n, sockdir, log_to, base_port=20000):
    with open(path, "w") as f:
        f.write(f'user = "nobody"\nsocket_dir = "{sockdir}"\nlog = "{log_to}"\n')
        for i in range(n):
            f.write(f'\n[binding.b{i:04d}]\nlisten = ["127.0.0.1:{base_port + i}"]\ngroup = "www-data"\n')
