"""Item 6: kill -9 of the daemon while apps serve, then a restart and a new worker.

The apps hold the socket, so no request should fail; what differs between set-ups is whether the
restarted daemon gets the socket back (self-bound: EADDRINUSE; fd store or .socket unit, played
by manager.Manager: adopted) and so whether a new worker can still start.
"""
import re
import socket

from .apps import pb_app
from .config import Q, SOCK
from .daemon import Portbinder
from .http_load import Load, restart_rows
from .manager import Manager
from .procs import stop
from .results import FACTS, SUMMARY, section, table, verdict


def measure():
    """Runs item 6, with its own daemons (ports 87-89)."""
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
             "harness (bench/pbbench/manager.py, class Manager) with systemd's own protocols, since no "
             "systemd runs as PID 1 here.")
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
