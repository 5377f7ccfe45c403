"""The driver: runs the items --only selected, in order, then writes the report.

Items 3 to 5 share one daemon serving `http` on port 80 (as a deployment would), so it is started
here once; item 2 shows the anchors' RSS that item 1 read while they ran. Whatever fails, every
process the run started is killed before the report is written.
"""
from . import (item1_grant_rate, item2_memory_startup, item3_app_start, item4_data_path,
               item5_rolling_restart, item6_daemon_restart, report)
from .config import ARGS, ONLY, SOCK, log
from .daemon import EXEC, PRELOAD, Portbinder
from .procs import kill_all


def main():
    m = report.machine()
    log(f"{m['cpu']}, {m['cores']} cores, kernel {m['kernel']}, portbinder {m['commit']}; "
        f"portbinder exec: {'yes' if EXEC else 'no'}, --preload: {'yes' if PRELOAD else 'no'}")
    anchor_rss = None
    pb_http = None
    try:
        if 1 in ONLY:
            log("1. grant rate")
            anchor_rss = item1_grant_rate.measure()
        if 2 in ONLY:
            log("2. memory and start-up")
            item2_memory_startup.measure(anchor_rss)
        if ONLY & {3, 4, 5}:
            pb_http = Portbinder(["--bind", "http=0.0.0.0:80", "--group", "www-data", "--user", "nobody",
                                  "--socket-dir", f"{SOCK}/run", "--log", "syslog"]).start()
        if 3 in ONLY:
            log("3. cost to a starting app")
            item3_app_start.measure(pb_http)
        if 4 in ONLY:
            log("4. data path")
            item4_data_path.measure()
        if 5 in ONLY:
            log("5. rolling restart")
            item5_rolling_restart.measure()
        if 6 in ONLY:
            log("6. daemon restart")
            item6_daemon_restart.measure()
        report.analysis()
    finally:
        kill_all()
    report.write_results(m)
    if ARGS.readme:
        report.update_readme(ARGS.readme, m)
