#!/usr/bin/python3
"""Hostile and measuring clients for portbinder's hostile and fault tests (Python 3.11
standard library only). The Rust tests (tests/hostile.rs, tests/faults.rs) run it as other
uids; every mode prints one JSON line at the end.

Modes:
  flood KIND SOCKET SECONDS HOLD   connect as fast as possible for SECONDS:
                                   vanish: close at once, without reading;
                                   stall:  never read: open HOLD connections, keep them all
                                           open until SECONDS have passed;
                                   fetch:  read the whole answer (e.g. a denied peer);
                                   prints {"connections", "errors", "seconds"}
  latency SOCKET SECONDS MAX       fetch repeatedly (5 ms apart) for SECONDS or MAX times;
                                   prints {"granted", "denied", "failed", "samples",
                                   "p50_us", "p99_us", "max_us", "errors" (message: count)}
  name HEX SOCKET                  set own process name to the bytes HEX, fetch once; prints
                                   {"pid", "comm_hex" (as the kernel kept it), "granted"}
  die SOCKET                       connect, print {"pid"}, then SIGKILL itself unanswered
  probe SOCKET                     fetch once; prints {"pid", "uid", "granted", "payload"}
"""

import ctypes
import json
import os
import resource
import signal
import socket
import struct
import sys
import time

TIMEOUT = 30.0
PR_SET_NAME = 15


def connect(path):
    """A blocking stream connection to PATH, every wait bounded by SO_SNDTIMEO/SO_RCVTIMEO."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    timeval = struct.pack("ll", int(TIMEOUT), 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return sock


def fetch(path):
    """One exchange: (payload bytes, number of descriptors received); fds are closed."""
    with connect(path) as sock:
        msg, fds, _flags, _addr = socket.recv_fds(sock, 4096, 255)
        payload = bytearray(msg)
        if msg:
            while more := sock.recv(4096):
                payload += more
    for fd in fds:
        os.close(fd)
    return bytes(payload), len(fds)


def granted(payload, nfds):
    return bool(payload) and payload[0] != 0 and payload[0] == nfds


def emit(obj):
    print(json.dumps(obj), flush=True)


def mode_flood(kind, path, seconds, hold):
    # Holding many connections needs descriptors: take the whole hard limit.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    held = []
    connections = errors = 0
    start = time.monotonic()
    deadline = start + min(seconds, 120.0)
    while time.monotonic() < deadline:
        try:
            sock = connect(path)
        except OSError:
            errors += 1
            continue
        connections += 1
        if kind == "vanish":
            sock.close()
        elif kind == "fetch":
            with sock:
                try:
                    socket.recv_fds(sock, 4096, 255)
                except OSError:
                    errors += 1
        elif kind == "stall":
            held.append(sock)
            if len(held) >= hold:
                time.sleep(max(0.0, deadline - time.monotonic()))
        else:
            sys.exit("unknown flood kind: " + kind)
    elapsed = time.monotonic() - start
    for sock in held:
        sock.close()
    emit({"connections": connections, "errors": errors, "seconds": elapsed})


def percentile(sorted_values, fraction):
    if not sorted_values:
        return 0
    index = min(len(sorted_values) - 1, int(fraction * len(sorted_values)))
    return sorted_values[index]


def mode_latency(path, seconds, most):
    samples = []
    counts = {"granted": 0, "denied": 0, "failed": 0}
    errors = {}
    deadline = time.monotonic() + min(seconds, 120.0)
    while time.monotonic() < deadline and len(samples) < most:
        began = time.perf_counter()
        try:
            payload, nfds = fetch(path)
        except OSError as err:
            counts["failed"] += 1
            errors[str(err)] = errors.get(str(err), 0) + 1
            continue
        samples.append(int((time.perf_counter() - began) * 1e6))
        counts["granted" if granted(payload, nfds) else "denied"] += 1
        time.sleep(0.005)
    samples.sort()
    emit(
        dict(
            counts,
            samples=len(samples),
            p50_us=percentile(samples, 0.50),
            p99_us=percentile(samples, 0.99),
            max_us=samples[-1] if samples else 0,
            errors=errors,
        )
    )


def mode_name(hexname, path):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NAME, ctypes.c_char_p(bytes.fromhex(hexname)), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    with open("/proc/self/comm", "rb") as comm:
        kept = comm.read().rstrip(b"\n")
    payload, nfds = fetch(path)
    emit({"pid": os.getpid(), "comm_hex": kept.hex(), "granted": granted(payload, nfds)})


def mode_die(path):
    sock = connect(path)
    emit({"pid": os.getpid()})
    os.kill(os.getpid(), signal.SIGKILL)
    sock.close()  # not reached


def mode_probe(path):
    payload, nfds = fetch(path)
    emit({"pid": os.getpid(), "uid": os.getuid(), "granted": granted(payload, nfds),
          "payload": list(payload[:1])})


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    mode, args = argv[1], argv[2:]
    if mode == "flood":
        mode_flood(args[0], args[1], float(args[2]), int(args[3]))
    elif mode == "latency":
        mode_latency(args[0], float(args[1]), int(args[2]))
    elif mode == "name":
        mode_name(args[0], args[1])
    elif mode == "die":
        mode_die(args[0])
    elif mode == "probe":
        mode_probe(args[0])
    else:
        sys.exit("unknown mode: " + mode)


if __name__ == "__main__":
    main(sys.argv)
