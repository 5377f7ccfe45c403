"""Item 3: what each way of getting a privileged port adds to an app's start.

spawnbench (bench/src/spawnbench.c) runs every command as www-data in interleaved rounds, and the
added time is a median difference against `true` or the app binding an unprivileged port itself:
the static client portbinder-exec (and the same client built dynamic), portbinder exec (and
--preload), authbind, s6-fdholder-retrieve from an s6-fdholderd, and the app fetching its socket
directly.
"""
import os
import re
import socket
import subprocess

from .config import (AUTHBIND, BIN, PB, PB_EXEC_DYNAMIC, PB_EXEC_STATIC, PY, Q, S6_RETRIEVE, SOCK, TRUE,
                     VARIANTS, WORK, WWW)
from .daemon import EXEC, PRELOAD, wait_socket
from .procs import popen, run, stop
from .results import FACTS, SUMMARY, section, table, verdict


SPAWN_RE = re.compile(r"name=(\S+) runs=(\d+) failures=(\d+)(?: p10_us=([\d.]+) median_us=([\d.]+) "
                      r"p90_us=([\d.]+) mean_us=([\d.]+))?")


def measure(pb_http):
    """Runs item 3 against PB_HTTP, the daemon serving binding `http` in SOCK/run."""
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
    # The static client: the same exec, one small static executable (what containers run).
    static = os.path.exists(PB_EXEC_STATIC)
    if static:
        cmds += [
            ("static-version", [PB_EXEC_STATIC, "--version"]),
            ("static-exec-true", [PB_EXEC_STATIC, "--socket-dir", sockdir, "http", "--", TRUE]),
            ("static-exec-app", [PB_EXEC_STATIC, "--socket-dir", sockdir, "http", "--", app, "check", "listen-fds"]),
        ]
    if os.path.exists(PB_EXEC_DYNAMIC):
        cmds.append(("dynamic-client-exec-true", [PB_EXEC_DYNAMIC, "--socket-dir", sockdir, "http", "--", TRUE]))
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
    if static:
        add = [("`portbinder-exec http -- true` (the static client)", added("static-exec-true", "true")),
               ("`portbinder-exec http -- app` (the static client, LISTEN_FDS)",
                added("static-exec-app", "app-binds-itself")),
               ("`portbinder-exec --version` (the static client's own start)", added("static-version", "true"))] + add
    if "dynamic-client-exec-true" in t:
        add.insert(3 if static else 0, ("`portbinder-exec http -- true`, the same client linked dynamically "
                                        "(release profile)", added("dynamic-client-exec-true", "true")))
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
                      "s6_true": added("s6-retrieve-true", "true"),
                      "static": (added("static-exec-true", "true"), added("static-exec-app", "app-binds-itself"),
                                 added("static-version", "true")) if static else None,
                      "dynamic_client": added("dynamic-client-exec-true", "true")
                      if "dynamic-client-exec-true" in t else None,
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
    s6t = added("s6-retrieve-true", "true")
    if static:
        # Like with like: `-- true` against s6-fdholder-retrieve's `... true`, `-- app` against its `... app`.
        v = added("static-exec-true", "true")
        SUMMARY.append((3, "`portbinder-exec -- true` (static client) added time",
                        f"{v:.3f} ms = {v / s6t:.2f}x s6-fdholder-retrieve `… true`'s {s6t:.3f}",
                        "< 1 ms and below s6's", verdict(v < 1 and v < s6t)))
        v = added("static-exec-app", "app-binds-itself")
        SUMMARY.append((3, "`portbinder-exec -- app` (static client) added time",
                        f"{v:.3f} ms = {v / auth:.2f}x authbind's {auth:.3f}, {v / s6c:.2f}x s6's {s6c:.3f}",
                        "< 1 ms and below both", verdict(v < 1 and v < auth and v < s6c)))
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
