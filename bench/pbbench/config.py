"""What this run is: bench/run's command line, the paths it names, the fixed programs, the clock.

The bench is a script run once per process by bench/run, so the command line is parsed when this
module is first imported and every other module reads the results as plain constants (as the
single-file bench did); nothing here measures or starts anything.
"""
import argparse
import os
import pwd
import time

ap = argparse.ArgumentParser()
ap.add_argument("--root", required=True)
ap.add_argument("--work", required=True)
ap.add_argument("--bin", required=True)
ap.add_argument("--syslog", required=True)
ap.add_argument("--quick", action="store_true", help="fewer rounds, shorter runs (a smoke test)")
ap.add_argument("--only", default="1,2,3,4,5,6", help="comma-separated items to run")
ap.add_argument("--results", required=True, help="where to write the Markdown results")
ap.add_argument("--readme", help="README.md whose Performance section to rewrite")
ap.add_argument("--variant", action="append", default=[], metavar="LABEL=PATH",
                help="another build of portbinder, measured beside the default one in items 2 and 3")
ap.add_argument("--baseline", metavar="LABEL=PATH",
                help="an earlier build of portbinder, measured beside this one in item 1 (before/after)")
ARGS = ap.parse_args()

ROOT, WORK, BIN, SYSLOG = ARGS.root, ARGS.work, ARGS.bin, ARGS.syslog
SOCK = f"{WORK}/sock"  # a tmpfs, as /run is on a Debian system: every Unix socket of the run
PB = os.path.join(ROOT, "target/release/portbinder")
# portbinder-exec, static and size-optimised (scripts/build-static-client), and the same client
# built as an ordinary dynamic release binary (cargo build --release --workspace).
PB_EXEC_STATIC = os.path.join(ROOT, "target/static-client/portbinder-exec")
PB_EXEC_DYNAMIC = os.path.join(ROOT, "target/release/portbinder-exec")
ANCHORS = os.path.join(ROOT, "bench/anchors")
PY = "/usr/bin/python3"
TRUE = "/usr/bin/true"
AUTHBIND = "/usr/bin/authbind"
S6_RETRIEVE = "/usr/bin/s6-fdholder-retrieve"
ONLY = {int(x) for x in ARGS.only.split(",") if x}
Q = ARGS.quick
WWW = pwd.getpwnam("www-data")
T_START = time.monotonic()


VARIANTS = [tuple(v.split("=", 1)) for v in ARGS.variant]
BASELINE = tuple(ARGS.baseline.split("=", 1)) if ARGS.baseline else None


def log(msg):
    print(f"bench: [{time.monotonic() - T_START:6.1f}s] {msg}", flush=True)
