"""The run's report: the machine, RESULTS.md, the analysis of missed targets, README.md's section.

The items leave their sections, summary rows and FACTS in results; this module turns them into
what the run writes at the end. An item's new row shows in RESULTS.md by itself; it reaches the
analysis or the README only through the figures the item puts in FACTS and this module reads.
"""
import datetime
import os
import platform
import subprocess
import time

from . import partial
from .config import ARGS, Q, ROOT, T_START, log
from .results import FACTS, SECTIONS, SUMMARY, rfmt, section, table


def analysis():
    """Why each missed target is missed, from this run's own figures (profiling notes that need a
    changed build are in bench/README.md)."""
    missed = {item for item, _w, _r, _t, v in SUMMARY if "missed" in v}
    out = []
    g = FACTS.get("grant")
    grant_missed = [w for item, w, _r, _t, v in SUMMARY if item == 1 and "missed" in v]
    if g and any("fdserver" in w for w in grant_missed):
        pb, mn = g["calls"].get("portbinder", {}), g["calls"].get("fdserver_min.c", {})
        cpu = g["cpu"]

        def calls(c):
            return ", ".join(f"{k} {v:.2f}" for k, v in sorted(c.items(), key=lambda kv: -kv[1]) if v >= 0.05)
        out.append(
            f"**Grant rate (item 1).** A grant is kernel work, and most of it is waking the other side: a perf "
            "profile of the daemon with one client (bench/README.md, \"Profiling notes\") puts about 60 % of its "
            "time in context switches and wake-ups (`finish_task_switch`, and the wake-up of the client in "
            "`sock_def_readable` under `sendmsg`) and under 5 % in the daemon's own code. With one client "
            f"portbinder made {sum(pb.values()):.1f} system calls per grant ({calls(pb)}) where fdserver_min.c "
            f"made {sum(mn.values()):.1f} ({calls(mn)}), and used {cpu[('portbinder', 1)]:.1f} µs of CPU per grant "
            f"against {cpu[('fdserver_min.c', 1)]:.1f} µs ({cpu[('portbinder', 4)]:.1f} against "
            f"{cpu[('fdserver_min.c', 4)]:.1f} with 4 clients). What the minimal server does not do, per "
            "connection: read SO_PEERCRED (the access decision), end the answer with shutdown(SHUT_WR) and "
            "close the connection only once the grant has been read, checked in batches with one SIOCOUTQ "
            "per grant (the cap on unread grants of issue 10: a hang-up alone does not prove a grant read, "
            "since a client may shut its end down and never read). And where it blocks in accept(2), the "
            "daemon waits "
            "in epoll_wait and then accepts, so that one loop watches the signalfd, every binding and the "
            "unread grants; when it catches up with its client it sleeps, and that grant costs an epoll_wait "
            "and an accept4 that finds the queue empty more. A blocking accept would remove those two only for "
            "a daemon with one binding and nothing else to watch: not taken. How often the daemon catches up, "
            "and whether the client then runs on the same CPU, decides most of the one-client rate, which is "
            "why the per-round ratios spread so widely on this shared machine.")
    for t in (1, 4):
        r = g and g["ratios"].get((t, "portbinder, 1,000 bindings", "portbinder"))
        if r and r[0] < 0.9:
            cpu = g["cpu"]
            out.append(
                f"**Grant rate with 1,000 bindings, {t} client{'s' if t > 1 else ''} (item 1).** "
                f"{r[0]:.2f}x one binding. "
                "Each socket is registered once on the loop's epoll instance, so no wake-up scans the bindings: "
                f"CPU per grant {cpu[('portbinder, 1,000 bindings', t)]:.1f} µs against "
                f"{cpu[('portbinder', t)]:.1f} µs with one binding. Profiled side by side under the same load, "
                "the two daemons spend their time in the same functions in the same proportions (bench/README.md, "
                "\"Profiling notes\")"
                + (f"; the per-round ratios ({r[1]:.2f}–{r[2]:.2f}) straddle the target." if r[2] >= 0.9
                   else f"; every per-round ratio is below the target (at most {r[2]:.2f})."))
    r = FACTS.get("rss")
    if 2 in missed and r:
        p = r["parts"]
        pp = r.get("pss_parts", {})
        v = "; ".join(f"{k}: {kib / 1024:.2f} MiB" for k, kib in r["variants"].items())
        out.append(
            f"**Memory (item 2).** Of the {r['pb'] / 1024:.2f} MiB RSS with one binding, "
            f"{p.get('anonymous', 0) / 1024:.2f} MiB is memory the daemon itself holds (heap, stacks); the rest "
            f"is file pages mapped into it: {p.get('program', 0) / 1024:.2f} MiB of its {r['size'] / 1e6:.1f} MB "
            f"executable (the release profile is already size-optimised: opt-level \"z\", LTO, stripped), "
            f"{p.get('libc', 0) / 1024:.2f} MiB of glibc and {p.get('other files', 0) / 1024:.2f} MiB of ld.so "
            "and libgcc_s. glibc's pages are every process's: its share of them, the PSS, is "
            f"{pp.get('libc', (0, 0))[0] / 1024:.2f} MiB; the daemon's whole PSS is {r.get('pss', 0) / 1024:.2f} "
            f"MiB and its USS {r.get('uss', 0) / 1024:.2f} MiB, of which the executable's clean page-cache pages "
            "are most (no other process maps that file). The minimal C server alone maps "
            f"{r.get('anchors', {}).get('fdserver_min.c', 0) / 1024:.2f} MiB, mostly glibc: below 2 MiB of RSS, "
            f"a dynamically linked daemon has room for about "
            f"{2 - r.get('anchors', {}).get('fdserver_min.c', 0) / 1024:.1f} MiB of its own code. A static "
            "build drops the "
            "shared mappings" + (f" (this run: {v})" if v else " (bench/run --variants measures it)")
            + ", but is not shipped: with a static glibc the configuration's user and group names resolve "
            "from /etc/passwd and /etc/group only (no sssd or LDAP, unless that glibc's own NSS modules are "
            "installed), and every glibc security fix would need a rebuild of the package. So the shipped "
            "build misses the RSS target by the shared pages above; what is the daemon's own is its PSS and "
            "its anonymous memory.")
    st = FACTS.get("start")
    if 3 in missed and st:
        v = "; ".join(f"{k}: `--version` +{a:.3f} ms, `exec -- true` +{b:.3f} ms" for k, (a, b) in st["variants"].items()
                      if b is not None)
        text = (
            f"**Cost to a starting app (item 3).** The fetch itself is cheap: a C client that fetches its socket "
            f"adds {st['fetch']:.3f} ms. Most of what `portbinder exec` adds ({st['exec']:.3f} ms) is starting "
            f"the portbinder executable at all: `portbinder --version` alone adds {st['version']:.3f} ms over "
            "`true` (loading libgcc_s and glibc for a large position-independent executable, relocating it, "
            "Rust and clap start-up), where s6-fdholder-retrieve is a small C program. "
            + (f"`--preload` adds another {st['preload_extra']:.3f} ms: the shim is a Rust shared library the "
               "dynamic linker loads into the app. " if st.get("preload_extra") is not None else ""))
        if st.get("static"):
            true_, app_, version = st["static"]
            text += (
                f"The static client runs the same code without the daemon's, clap or the dynamic loader: "
                f"`portbinder-exec --version` adds {version:.3f} ms, `-- true` {true_:.3f} ms "
                f"({true_ / st['s6_true']:.2f}x s6-fdholder-retrieve's {st['s6_true']:.3f}), `-- app` {app_:.3f} ms"
                + (f"; linked dynamically, the same client's `-- true` adds {st['dynamic_client']:.3f} ms"
                   if st.get("dynamic_client") is not None else "")
                + ". Use it wherever start time matters (it is what containers run); `portbinder exec` stays "
                "the command for a shell. ")
        text += ("What would close the rest for the full executable: a static, size-optimised build"
                 + (f" (this run: {v})" if v else " (bench/run --variants measures one)")
                 + "; for `--preload`, a C shim (authbind's library is C).")
        out.append(text)
    if 4 in missed:
        out.append(
            "**Data path (item 4).** Where the ratio of requests/s is below 0.98, look at the CPU per request "
            "and at the A/A twin in the same table: once granted, the socket is the kernel's own listening "
            "socket and portbinder is not on the path, so the server-side CPU per request is the same; a "
            "ratio off by a few percent on this shared machine is noise of the same size as the twin's.")
    if 6 in missed or any(i == 6 and "see the restart" in v for i, _w, _r, _t, v in SUMMARY):
        out.append(
            "**Daemon restart (item 6).** No request fails when the daemon dies: the apps hold the socket. "
            "A daemon that bound the port itself gets it back from the apps holding it (recovery, which needs "
            "root's CAP_SYS_PTRACE); one started without that capability cannot bind it again while the apps "
            "hold it (EADDRINUSE), so it stays down and no new app instance can start until all have exited. "
            "Start it as root, or with the systemd fd store (FileDescriptorStoreMax=, the set-up measured "
            "above) or from a .socket unit: then the restart gets the socket back in a few milliseconds and "
            "rolling restarts go on.")
    if out:
        section("Why the missed targets are missed, and what would close them", "\n\n".join(out))


def machine():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    debian = open("/etc/debian_version").read().strip() if os.path.exists("/etc/debian_version") else "?"
    rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    rustc = os.environ.get("BENCH_RUSTC", "")
    return {"cpu": model, "cores": os.cpu_count(), "kernel": platform.release(), "debian": debian,
            "commit": rev + ("+changes" if dirty else ""), "rustc": rustc or "?",
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "load": open("/proc/loadavg").read().split()[0]}


def write_results(m):
    """Prints the summary and writes RESULTS.md; M is machine() from the start of the run."""
    m["load_end"] = open("/proc/loadavg").read().split()[0]
    elapsed = time.monotonic() - T_START
    summary = table(["item", "what", "result", "target", "verdict"], SUMMARY)
    head = (f"Machine: {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}, Debian {m['debian']}, {m['rustc']}. "
            f"Date: {m['date']}. portbinder {m['commit']}. Load average {m['load']} at start, "
            f"{m['load_end']} at the end (the machine is shared: only ratios between set-ups measured "
            f"side by side, interleaved, mean anything). Run took {elapsed:.0f} s"
            f"{' (--quick: fewer rounds)' if Q else ''}.")
    print("\n## Summary\n\n" + head + "\n\n" + summary, flush=True)
    sections, origin = SECTIONS, "Every figure below comes from that one run."
    if partial.is_partial() and os.path.exists(ARGS.results):
        # Only the items run are replaced; the others stay as the earlier run wrote them.
        head, rows, sections = partial.merge_results(ARGS.results, head, summary.split("\n")[2:], SECTIONS)
        summary = "\n".join(summary.split("\n")[:2] + rows)
        origin = "Each item's figures come from one run, the one named for it below."
    with open(ARGS.results, "w") as f:
        f.write("# portbinder benchmark results\n\n"
                f"Written by `bench/run` (run it as root from the repository; see bench/README.md). {origin}"
                "\n\n" + head + "\n\n## Summary\n\n" + summary + "\n")
        for title, text in sections:
            f.write(f"\n## {title}\n\n{text}\n")
    log(f"wrote {ARGS.results}")


def readme_rows():
    """The short table of README.md: one line per measured question, ratios where the target is one."""
    rows = []

    def v(ok):
        return "met" if ok else "missed"
    g = FACTS.get("grant")
    if g:
        r = g["ratios"]
        a1, a4 = r[(1, "portbinder", "fdserver_min.c")][0], r[(4, "portbinder", "fdserver_min.c")][0]
        b1, b4 = r[(1, "portbinder", "fdserver.py")][0], r[(4, "portbinder", "fdserver.py")][0]
        rows.append(["grant rate vs the minimal C server, 1 / 4 clients (audit log on)",
                     f"{rfmt(a1, 0.9)}x / {rfmt(a4, 0.9)}x", "≥ 0.9x", v(min(a1, a4) >= 0.9)])
        rows.append(["grant rate vs the gist (fdserver.py), 1 / 4 clients", f"{rfmt(b1, 1.3)}x / {rfmt(b4, 1.3)}x",
                     "≥ 1.3x", v(min(b1, b4) >= 1.3)])
        k = [r.get((t, "portbinder, 1,000 bindings", "portbinder")) for t in (1, 4)]
        if all(k):
            rows.append(["grant rate of a daemon serving 1,000 bindings vs 1 binding, 1 / 4 clients",
                         f"{rfmt(k[0][0], 0.9)}x / {rfmt(k[1][0], 0.9)}x", "≥ 0.9x",
                         v(min(k[0][0], k[1][0]) >= 0.9)])
    r = FACTS.get("rss")
    if r:
        an = r.get("anchors", {})
        beside = [", ".join(f"{n} {an[n] / 1024:.1f}" for n in ("fdserver.py", "fdserver_min.c") if n in an)]
        static = [kib for k, kib in r.get("variants", {}).items() if "static" in k]
        if static:
            beside.append(f"a static size-optimised build: {static[0] / 1024:.1f} with 1")
        beside = "; ".join(b for b in beside if b)
        rows.append(["RSS with 1 / 1,000 bindings, MiB" + (f" ({beside})" if beside else "")
                     + (f"; with 1, PSS {r['pss'] / 1024:.1f}, USS {r['uss'] / 1024:.1f}, anonymous "
                        f"{r['parts'].get('anonymous', 0) / 1024:.2f}" if "pss" in r else ""),
                     f"{r['pb'] / 1024:.1f} / {r['pb1000'] / 1024:.1f}", "< 2 / < 8",
                     v(r["pb"] < 2048 and r["pb1000"] < 8192)])
        rows.append(["start-up to READY, 1,000 bindings vs 1 (per-binding cost, 100→1,000 vs 10→100)",
                     f"{r['startup_x']:.0f}x ({r['linear']:.2f})", "linear at most", v(r["linear"] < 1.5)])
    st = FACTS.get("start")
    if st and st.get("static"):
        true_, app_, _ = st["static"]
        rows.append([f"added start time of an app, ms, static client: `portbinder-exec -- true` / `-- app` "
                     f"(s6-fdholder-retrieve `… true` {st['s6_true']:.2f} / `… app` {st['s6']:.2f}, "
                     f"authbind {st['authbind']:.2f})",
                     f"{rfmt(true_, 1.0)} / {rfmt(app_, 1.0)}", "< 1 and below s6 (and authbind)",
                     v(true_ < 1 and app_ < 1 and true_ < st["s6_true"] and app_ < st["s6"]
                       and app_ < st["authbind"])])
    if st and st["exec"] is not None:
        shown = [("`exec -- true`", st["exec"]), ("`exec -- app`", st["exec_app"])]
        if st.get("preload_app") is not None:
            shown.append(("`exec --preload -- app`", st["preload_app"]))
        beside = [f"authbind {st['authbind']:.2f}", f"s6-fdholder-retrieve {st['s6']:.2f}"]
        static = [b for k, (a, b) in st["variants"].items() if "static" in k and b is not None]
        if static:
            beside.append(f"the whole executable built static: `exec -- true` {static[0]:.2f}")
        if st.get("dynamic_client") is not None:
            beside.append(f"portbinder-exec linked dynamically: `-- true` {st['dynamic_client']:.2f}")
        rows.append([f"added start time of an app, ms, `portbinder exec` (the full dynamic executable): "
                     f"{' / '.join(n for n, _ in shown)} ({'; '.join(beside)})",
                     " / ".join(rfmt(x, 1.0) for _, x in shown), "< 1 and below both",
                     v(all(x < 1 and x < st["authbind"] and x < st["s6"] for _, x in shown))])
    d = FACTS.get("data")
    if d:
        ka, cl = d.get(False), d.get(True)
        rows.append([f"requests/s vs the server binding itself, keep-alive / new connection per request "
                     f"(systemd-socket-proxyd {ka[2]:.2f} / {cl[2]:.2f}, socat {ka[3]:.2f} / {cl[3]:.2f})",
                     f"{rfmt(ka[0], 0.98)} / {rfmt(cl[0], 0.98)} (CPU per request {ka[4]:.2f}x / {cl[4]:.2f}x)",
                     "≥ 0.98",
                     v(min(ka[0], cl[0]) >= 0.98) + ("" if min(ka[0], cl[0]) >= 0.98 else (
                         " (within noise: the A/A twin is as far off)"
                         if all(abs(1 - x[1]) >= abs(1 - x[0]) for x in (ka, cl) if x[0] < 0.98) else ""))])
    ro = FACTS.get("rolling")
    if ro:
        pb = sum(x.get("portbinder", 0) for x in ro.values())
        own = sum(x.get("one process binding the port itself, restarted", 0) for x in ro.values())
        rows.append([f"failed requests, rolling restart of 4 workers under load (one self-binding process "
                     f"restarted instead: {own})", str(pb), "0", v(pb == 0)])
    rs = FACTS.get("restart")
    if rs:
        def restart_row(what, fact):
            failed, restarted, ready = fact
            shown = f"{failed}; ready in {ready:.1f} ms" if restarted and ready is not None else (
                f"{failed}" if restarted else f"{failed}; the restart fails (EADDRINUSE)")
            return [what, shown, "0", v(failed == 0 and restarted) if restarted else v(failed == 0) + ", but no restart"]
        if rs.get("fdstore"):
            rows.append(restart_row("failed requests, kill -9 + restart of the daemon under load, with the systemd "
                                    "fd store (time to ready: median)", rs["fdstore"]))
        if rs.get("recovery"):
            rows.append(restart_row("… with no service manager: the socket recovered from the apps holding it",
                                    rs["recovery"]))
        if rs.get("no-recovery"):
            rows.append(restart_row("… with no service manager, started without CAP_SYS_PTRACE (no recovery, "
                                    "every restart before it)", rs["no-recovery"]))
    return rows


def update_readme(path, m):
    rows = readme_rows()
    block = (f"Machine: {m['cpu']}, {m['cores']} cores, shared with other work and noisy; Linux {m['kernel']}, "
             f"Debian {m['debian']}. Date: {m['date'][:10]}. Every comparison is a ratio between set-ups measured "
             "side by side in one run, interleaved; the absolute figures (MiB, ms) are where the target itself "
             f"is absolute. Reproduce with `bench/run --readme` (as root; this run took "
             f"{(time.monotonic() - T_START) / 60:.0f} minutes; it installs what it "
             "needs and works in its own namespaces). Full output: [bench/RESULTS.md](bench/RESULTS.md); "
             "method and profiles: [bench/README.md](bench/README.md).\n\n"
             + table(["what", "portbinder", "target", ""], rows) + "\n")
    text = open(path).read()
    begin, end = "<!-- bench/run: begin -->", "<!-- bench/run: end -->"
    if begin in text and end in text:
        pre, rest = text.split(begin, 1)
        old_block, post = rest.split(end, 1)
        if partial.is_partial():
            # Only the rows of the items run are replaced.
            block = partial.merge_readme(old_block, table(["what"], rows).split("\n")[2:] if rows else [],
                                         m["date"][:10], f"{m['cpu']}, Linux {m['kernel']}")
        text = pre + begin + "\n" + block + end + post
    else:
        text = text.rstrip("\n") + "\n\n## Performance\n\n" + begin + "\n" + block + end + "\n"
    with open(path, "w") as f:
        f.write(text)
    log(f"updated the Performance section of {path}")
