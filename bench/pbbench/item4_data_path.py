"""Item 4: the data path, requests/s of the same app by where its socket comes from.

Once granted, the socket is the kernel's own, so the ratio to the app binding its port itself
should be 1; an A/A twin shows the noise of the shared machine, CPU per request is the steadier
measure, and systemd-socket-proxyd and socat show what a proxy on the path costs instead.
"""
import socket
import subprocess
import time

from .apps import pb_app, start_app
from .config import Q, SOCK
from .daemon import EXEC
from .http_load import parse_wrk, wrk
from .procs import popen, run, stop, wait_until
from .procstat import median, tree_cpu_s
from .results import FACTS, SUMMARY, section, table, verdict


def measure():
    """Runs item 4 against the daemon serving binding `http` in SOCK/run."""
    rounds = 3 if Q else 20
    proxy_rounds = 2 if Q else 5
    secs = 1
    direct = start_app("bind:0.0.0.0:8080")
    twin = start_app("bind:0.0.0.0:8081")
    viapb = pb_app("http", f"{SOCK}/run")
    proxyd = popen(["systemd-socket-activate", "-l", "0.0.0.0:83", "/lib/systemd/systemd-socket-proxyd",
                    "127.0.0.1:8080"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    socat = popen(["socat", "TCP-LISTEN:84,fork,reuseaddr,backlog=1024", "TCP:127.0.0.1:8080"],
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    variants = {"bound by itself (0.0.0.0:8080)": 8080, "bound by itself, a twin (0.0.0.0:8081): A/A, the noise": 8081,
                "socket from portbinder (0.0.0.0:80)": 80,
                "systemd-socket-proxyd on :83 → :8080": 83, "socat on :84 → :8080": 84}

    def up(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False
    for port in variants.values():
        wait_until(lambda: up(port), 10, f"port {port}")
    names = list(variants)
    serving = {names[0]: [direct.pid], names[1]: [twin.pid], names[2]: [viapb.pid],
               names[3]: [proxyd.pid, direct.pid], names[4]: [socat.pid, direct.pid]}
    res = {(n, c): [] for n in names for c in (False, True)}
    for n in names:
        run(wrk(variants[n], 1), timeout=30)  # warm-up
    deadline = time.monotonic() + (60 if Q else 200)
    core, proxies = names[:3], names[3:]
    for r in range(rounds):
        if time.monotonic() > deadline:
            break
        # The proxies are far from 1 and need fewer rounds; the three set-ups whose ratio is close to
        # 1 get every round. Proxies run in the first rounds only, so their rounds pair with the base's.
        this = core + (proxies if r < proxy_rounds else [])
        for close in (False, True):
            for n in this[r % len(this):] + this[:r % len(this)]:
                c0 = tree_cpu_s(serving[n])
                out = parse_wrk(run(wrk(variants[n], secs, close=close), timeout=60).stdout)
                out["cpu_us"] = (tree_cpu_s(serving[n]) - c0) / max(out["requests"], 1) * 1e6
                res[(n, close)].append(out)
    for p in (direct, twin, viapb, proxyd, socat):
        stop(p)
    rows, ratio = [], {}
    base = names[0]
    for close in (False, True):
        for n in names:
            rs = res[(n, close)]
            per_round = [a["rps"] / b["rps"] for a, b in zip(rs, res[(base, close)]) if b["rps"]]
            ratio[(n, close)] = (median(per_round), min(per_round), max(per_round))
            cpu = median([x["cpu_us"] for x in rs])
            cpu_base = median([x["cpu_us"] for x in res[(base, close)]])
            rows.append(["new connection per request" if close else "keep-alive (16 connections)", n,
                         f"{median([x['rps'] for x in rs]):.0f}",
                         f"{ratio[(n, close)][0]:.3f} [{ratio[(n, close)][1]:.2f}–{ratio[(n, close)][2]:.2f}]",
                         f"{cpu:.1f} ({cpu / cpu_base:.2f}x)", sum(x["errors"] for x in rs), len(rs)])
    text = table(["load", "the same server (bench/src/app.c), its socket", "requests/s (median)",
                  "ratio to bound by itself [min–max]", "server-side CPU µs/request (vs bound by itself)",
                  "errors", "rounds"], rows)
    text += (f"\n\nwrk -t1 -c16 -d{secs}s, one round = every set-up once, order rotated each round (the proxies "
             f"in the first {proxy_rounds} rounds only). The app is "
             f"started {'through `portbinder exec http -- app serve listen-fds`' if EXEC else 'as `app serve fetch:…/http.sock`'} "
             "as www-data. Server-side CPU counts the app and, behind a proxy, the proxy (with socat's forked "
             "children); wrk's own is left out. Once granted, the socket *is* the kernel's listening socket: "
             "portbinder is not on the data path, so its ratio is 1 within noise; a proxy adds a hop per "
             "request or per connection.")
    section("4. Data path: HTTP requests/s (wrk) of one server, by where its socket comes from", text)
    for close in (False, True):
        v = ratio[(names[2], close)][0]
        aa = ratio[(names[1], close)][0]
        px = ratio[(names[3], close)][0]
        sc = ratio[(names[4], close)][0]
        cpu = median([x["cpu_us"] for x in res[(names[2], close)]]) / median([x["cpu_us"] for x in res[(base, close)]])
        FACTS.setdefault("data", {})[close] = (v, aa, px, sc, cpu)
        ok = v >= 0.98
        note = "" if ok else (" (within noise: the A/A twin is as far off)" if abs(1 - aa) >= abs(1 - v) else "")
        SUMMARY.append((4, f"requests/s vs bound by itself, {'new connection per request' if close else 'keep-alive'}",
                        f"{v:.3f}, CPU/request {cpu:.2f}x (A/A twin {aa:.3f}; systemd-socket-proxyd {px:.2f}, "
                        f"socat {sc:.2f})", "≥ 0.98", verdict(ok) + note))
