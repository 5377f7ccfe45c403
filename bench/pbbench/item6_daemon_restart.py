"""Item 6: kill -9 of the daemon while apps serve, then a restart and a new worker.

The apps hold the socket, so no request should fail; what differs between set-ups is whether the
restarted daemon gets the socket back (no service manager: recovered from the apps that hold it,
or, started without CAP_SYS_PTRACE as every daemon was before recovery, EADDRINUSE; fd store or
.socket unit, played by manager.Manager: adopted) and so whether a new worker can still start.
Then the time to ready after kill -9, over interleaved rounds, for each way of getting it back.
"""
import os
import re
import socket
import statistics
import time

from .apps import pb_app
from .config import PB, Q, SOCK, WORK
from .daemon import Portbinder
from .http_load import Load, restart_rows
from .manager import Manager
from .procs import stop
from .results import FACTS, SUMMARY, section, table, verdict

SETUPS = [("recovery", "portbinder binding the port itself, no service manager: recovery from the holders"),
          ("no-recovery", "the same, restarted without CAP_SYS_PTRACE: no recovery (every restart before it)"),
          ("fdstore", "portbinder with the systemd fd store (FDSTORE=1, emulated by the harness)"),
          ("socket-unit", "socket-activated portbinder (the harness holds the socket like a .socket unit)")]


def no_ptrace_binary():
    """portbinder started without CAP_SYS_PTRACE in its bounding set (a wrapper that execs it, so the
    pid is the daemon's): it cannot recover, as no daemon could before recovery existed."""
    path = f"{WORK}/portbinder-no-ptrace"
    with open(path, "w") as f:
        f.write(f'#!/bin/sh\nexec setpriv --bounding-set=-sys_ptrace -- {PB} "$@"\n')
    os.chmod(path, 0o755)
    return path


def manager_for(kind, tag, port):
    """The stand-in for systemd that set-up KIND needs (None without a service manager)."""
    if kind == "fdstore":
        return Manager(tag, fdstore=True)
    if kind == "socket-unit":
        held = socket.socket()
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        held.bind(("0.0.0.0", port))
        held.listen(1024)
        return Manager(tag, socket_unit=[("live", held)])
    return None


def close_manager(manager):
    if manager:
        for sk in [sk for _, sk in manager.held] + [sk for v in manager.store.values() for sk in v]:
            sk.close()
        if manager.notify:
            manager.notify.close()


def taken_over(daemon):
    """`adopted=N recovered=N` from the daemon's event=start line."""
    start_line = next((l for l in daemon.lines() if l.startswith("event=start")), "")
    found = re.search(r"adopted=\d+ recovered=\d+|adopted=\d+", start_line)
    return found.group(0) if found else ""


def under_load(notes):
    """Each set-up with 2 workers under wrk: kill -9 of the daemon, a restart, a worker replaced."""
    secs = 6 if Q else 8
    results = []
    for close in (False, True):
        mode = "new connection per request" if close else "keep-alive"
        for k, (kind, label) in enumerate(SETUPS):
            sockdir = f"{SOCK}/run6{kind}{int(close)}"
            port = 87 + k
            args = ["--bind", f"live=0.0.0.0:{port}", "--group", "www-data", "--user", "nobody",
                    "--socket-dir", sockdir, "--log", "syslog"]
            manager = manager_for(kind, f"{kind}{int(close)}", port)
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
            binary = no_ptrace_binary() if kind == "no-recovery" else PB
            restart = Portbinder(args, manager=manager, binary=binary)
            t0 = time.monotonic()
            try:
                restart.start(timeout=5)
                what = f"restarted, ready in {restart.ready_s * 1000:.0f} ms"
                if taken_over(restart):
                    what += f" (`{taken_over(restart)}`)"
            except RuntimeError:
                err = [l.strip() for l in restart.stderr().splitlines() if l.strip()]
                what = (f"restart failed, exit {restart.p.returncode} after "
                        f"{(time.monotonic() - t0) * 1000:.0f} ms")
                restart.p = None
                if err:
                    notes.append(f"{kind} daemon restarted while the apps hold the socket: `"
                                 + " / ".join(err)[:600] + "`")
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
            close_manager(manager)
            results.append((mode, kind, label, r, f"kill -9 at {secs * 0.25:.1f} s; {what}"))
    return results


def ready_rounds():
    """Time from spawn to `event=ready` (read on the daemon's stderr, exactly) after kill -9, per
    set-up, in interleaved rounds: 2 idle workers hold the socket, except for the fresh start,
    whose port nothing holds. Returns {kind: [ms...]} and, per no-recovery attempt, (ms to its
    exit, exit code), or (None, 0) for one that became ready."""
    rounds = 5 if Q else 15
    kinds = [("fresh", 0), ("recovery", 2), ("fdstore", 2), ("socket-unit", 2)]
    live, ready, failed = {}, {}, []
    for k, (kind, n) in enumerate(kinds + [("no-recovery", 2)]):
        sockdir, port = f"{SOCK}/ready6{kind}", 91 + k
        args = ["--bind", f"live=0.0.0.0:{port}", "--group", "www-data", "--user", "nobody",
                "--socket-dir", sockdir, "--log", "stderr"]
        manager = manager_for(kind, f"ready{kind}", port)
        daemon = Portbinder(args, log_to="stderr", manager=manager).start()
        workers = [pb_app("live", sockdir) for _ in range(n)]
        live[kind] = [args, manager, daemon, workers]
    no_ptrace = no_ptrace_binary()
    order = [kind for kind, _ in kinds] + ["no-recovery"]
    for r in range(rounds):
        for kind in order[r % len(order):] + order[:r % len(order)]:
            args, manager, daemon, _ = live[kind]
            if daemon:
                daemon.p.kill()
                daemon.p.wait()
            if kind == "no-recovery":
                attempt = Portbinder(args, log_to="stderr", binary=no_ptrace)
                t0 = time.monotonic()
                try:
                    attempt.start(timeout=5)
                    attempt.stop()
                    failed.append((None, 0))
                except RuntimeError:
                    failed.append(((time.monotonic() - t0) * 1000, attempt.p.wait()))
                live[kind][2] = None
                continue
            daemon = Portbinder(args, log_to="stderr", manager=manager).start(timeout=5)
            if manager:
                manager.drain()
            ready.setdefault(kind, []).append(daemon.ready_s * 1000)
            live[kind][2] = daemon
    for args, manager, daemon, workers in live.values():
        for w in workers:
            stop(w)
        if daemon:
            daemon.stop()
        close_manager(manager)
    return ready, failed


def spread(ms):
    return f"{statistics.median(ms):.1f} ({min(ms):.1f}–{max(ms):.1f})"


def measure():
    """Runs item 6, with its own daemons (ports 87-90 under load, 91-95 for the ready times)."""
    notes = []
    results = under_load(notes)
    text = table(["load", "set-up (2 workers serving; kill -9 of the daemon, then a restart)", "requests",
                  "requests/s", "failed", "wrk errors", "what happened"],
                 restart_rows([(mode, label, r, note) for mode, _, label, r, note in results]))
    if notes:
        text += "\n\n" + "\n".join(f"- {n}" for n in sorted(set(notes)))
    ready, failed = ready_rounds()
    fresh = statistics.median(ready["fresh"])
    labels = {"fresh": "a fresh start, nothing holding the port (for comparison)",
              "recovery": "no service manager: recovered from the 2 workers holding the socket",
              "fdstore": "systemd fd store (emulated): adopted from LISTEN_FDS",
              "socket-unit": ".socket unit (emulated): adopted from LISTEN_FDS"}
    rows = [[labels[k], spread(ready[k]), f"{statistics.median(ready[k]) / fresh:.2f}x"]
            for k in ("recovery", "fdstore", "socket-unit", "fresh")]
    exits = [(ms, code) for ms, code in failed if ms is not None]
    codes = ", ".join(str(c) for c in sorted({code for _, code in exits}))
    became_ready = len(failed) - len(exits)
    if became_ready:
        outcome = f"ready in {became_ready} of {len(failed)} attempts (expected never)"
    else:
        outcome = (f"never while an app holds the socket ({len(failed)} attempts): exit {codes} after "
                   f"{spread([ms for ms, _ in exits])}")
    rows.append(["no service manager, started without CAP_SYS_PTRACE (no recovery, as before it)",
                 outcome, "—"])
    text += ("\n\nTime to ready after kill -9, " + f"{len(ready['fresh'])} interleaved rounds, ms, median (min–max), "
             "from spawn to the `event=ready` line on the daemon's stderr:\n\n"
             + table(["how the restarted daemon gets its socket", "time to ready, ms", "vs a fresh start"], rows))
    text += ("\n\nThe workers keep serving through the daemon's death: they hold the listening socket and the "
             "daemon is not on the data path. What a restart needs is the socket back. With no service manager "
             "the restarted daemon finds its bind(2) refused (EADDRINUSE), finds the socket on the address with "
             "sock_diag (the listening sockets only, whatever the number of connections), finds the workers "
             "holding it in /proc, pins them with pidfds, checks that the binding would grant them, and takes "
             "its own duplicate with pidfd_getfd (root's CAP_SYS_PTRACE); "
             "started without that capability it cannot, and bind(2) fails with EADDRINUSE until every app has "
             "exited, so no new instance can be started meanwhile (what every restart without a service manager "
             "did before recovery). With the fd store (or a .socket unit) the restarted daemon gets the socket "
             "through LISTEN_FDS and adopts it. The fd store and the .socket unit are played by the harness "
             "(bench/pbbench/manager.py, class Manager) with systemd's own protocols, since no systemd runs as "
             "PID 1 here; their times to ready include the harness passing the descriptors at the spawn. The "
             "restart without recovery is the same binary started under `setpriv --bounding-set=-sys_ptrace`.")
    section("6. Daemon restart under load (kill -9 of portbinder while apps serve)", text)
    for kind, label in SETUPS:
        mine = [(mode, r, note) for mode, k, _, r, note in results if k == kind]
        failed_requests = ", ".join(f"{r['errors']} ({mode})" for mode, r, _ in mine)
        ok = all(r["errors"] == 0 for _, r, _ in mine)
        restarted = all("restarted" in note for _, _, note in mine)
        ready_ms = statistics.median(ready[kind]) if kind in ready else None
        FACTS.setdefault("restart", {})[kind] = (sum(r["errors"] for _, r, _ in mine), restarted, ready_ms)
        if restarted:
            after = f"restart gets the socket back (ready in {ready_ms:.1f} ms, median), new workers start"
        else:
            after = "restart fails (EADDRINUSE): no new worker can start until every app exits"
        SUMMARY.append((6, f"kill -9 of the daemon under load, {label.split(' (')[0]}",
                        f"failed requests: {failed_requests}; {after}", "0 failed",
                        verdict(ok) + ("" if restarted else " (but see the restart)")))
