#!/usr/bin/python3
"""The measurements of bench/run. Runs inside the network, mount and PID namespaces that
bench/run creates (port 80 is free there, /dev/log is a private rsyslogd); do not run it
directly. Every loop is bounded in rounds and in seconds. Results are ratios between set-ups
measured interleaved in the same run; absolute figures are printed for context only.

The code is in the package beside this file (pbbench/, one module per item and the harness they
share); this file stays the entry point so that bench/run's command line does not change.
"""
import os
import sys

# Python puts this script's directory first on sys.path, except under -P or PYTHONSAFEPATH.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pbbench.main import main  # noqa: E402 (after the path is set)

main()
