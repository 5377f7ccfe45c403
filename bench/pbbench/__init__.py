"""bench/run's measurements, one module per item of issue 6, and the harness they share.

Run only through bench/run (bench/bench.py is the entry point it calls), inside the namespaces
it creates. Layout:

- config: the command line, paths and clock; procs: processes started and stopped;
  procstat: CPU and RSS from /proc; daemon: the portbinder handle and its config files;
  manager: systemd's fd store and .socket unit, played for item 6;
  fdbench, syscalls, http_load, apps: the clients and loads the items drive.
- item1_grant_rate ... item6_daemon_restart: one measurement each, a `measure()` that adds its
  section and summary rows to results and its figures to results.FACTS.
- results: sections, summary rows and table formats; report: RESULTS.md, the analysis of missed
  targets and README.md's Performance section; main: the order of the items.

A new row of an item touches its module (and report, if the analysis or README shows it); a new
item is a new module, a line in main and its part of report.
"""
