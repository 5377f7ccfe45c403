"""Item 5: rolling restart of the app under load, failed requests counted by wrk.

portbinder's 4 workers are replaced one at a time (the new one fetches the socket, the old one
drains), beside one process that binds the port itself and is restarted, and the same with
SO_REUSEPORT: what the app gains by not owning its socket.
"""
import time

from .apps import pb_app, start_app
from .config import Q, SOCK
from .http_load import Load, restart_rows
from .procs import stop
from .procstat import median
from .results import FACTS, SUMMARY, section, table, verdict


def measure():
    """Runs item 5 against the daemon serving binding `http` in SOCK/run."""
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
