#!/usr/bin/python3
"""Reads back the socket options of granted sockets (tests/sockopts.rs; standard library only).

Run as: /usr/bin/python3 sockopts.py SOCKET [BYTES]
Fetches every socket of the binding at SOCKET and prints one JSON line: {"fds": [...]}, one
object per socket with what getsockopt and fcntl say about it. For a TCP socket it also
connects to it, sends a byte (TCP_DEFER_ACCEPT holds the connection back until data comes),
accepts, and reports the accepted connection's keepalive settings ("accepted"). With BYTES,
"app_rcvbuf" is what an unprivileged program gets from SO_RCVBUF=BYTES on a socket of its own.
"""

import fcntl
import json
import os
import select
import socket
import struct
import sys

TIMEOUT = 30.0
MAX_FDS = 255
# Not in Python's socket module on every version.
IP_FREEBIND = 15
IPV6_FREEBIND = 78
SO_MARK = 36
SO_BINDTODEVICE = 25
SO_RCVBUFFORCE = 33


def fetch(path):
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(TIMEOUT)
        conn.connect(path)
        msg, fds, _flags, _addr = socket.recv_fds(conn, 401, MAX_FDS)
    if not msg or msg[0] == 0 or msg[0] != len(fds):
        sys.exit(json.dumps({"error": "not granted", "payload": list(msg)}))
    return fds


def flag(sock, level, name):
    return bool(sock.getsockopt(level, name))


def keepalive(sock):
    return {
        "keepalive": flag(sock, socket.SOL_SOCKET, socket.SO_KEEPALIVE),
        "keepalive_idle": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
        "keepalive_interval": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
        "keepalive_count": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
    }


def accepted(listener):
    """Connect to LISTENER, send a byte, accept: the accepted connection's keepalive (or
    the error, when the address cannot be reached yet)."""
    host, port = listener.getsockname()[:2]
    try:
        client = socket.create_connection((host, port), timeout=TIMEOUT)
    except OSError as err:
        return {"error": str(err)}
    with client:
        client.sendall(b"x")
        readable, _, _ = select.select([listener], [], [], TIMEOUT)
        if not readable:
            return None
        conn, _ = listener.accept()
        with conn:
            return keepalive(conn)


def describe(fd):
    status = fcntl.fcntl(fd, fcntl.F_GETFL)
    with socket.socket(fileno=os.dup(fd)) as sock:
        family = sock.family
        info = {
            "family": family.name,
            "type": sock.type.name,
            "addr": list(sock.getsockname()[:2]),
            "nonblocking": bool(status & os.O_NONBLOCK),
            "reuse_address": flag(sock, socket.SOL_SOCKET, socket.SO_REUSEADDR),
            "bind_to_device": sock.getsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, 16)
            .rstrip(b"\0")
            .decode(),
            "receive_buffer": sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
            "send_buffer": sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF),
            "mark": sock.getsockopt(socket.SOL_SOCKET, SO_MARK),
        }
        if family == socket.AF_INET6:
            info["ipv6_only"] = flag(sock, socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
            info["free_bind"] = flag(sock, socket.IPPROTO_IPV6, IPV6_FREEBIND)
        else:
            info["free_bind"] = flag(sock, socket.IPPROTO_IP, IP_FREEBIND)
        if sock.type == socket.SOCK_STREAM:
            info["defer_accept"] = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT)
            info["fast_open"] = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN)
            info.update(keepalive(sock))
            info["accepted"] = accepted(sock)
    return info


def app_rcvbuf(size):
    """What SO_RCVBUF=SIZE gives a program without CAP_NET_ADMIN (capped at rmem_max)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
            forced = True
        except PermissionError:
            forced = False
        return {"app_rcvbuf": sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF), "app_forced": forced}


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    fds = fetch(argv[1])
    result = {"fds": [describe(fd) for fd in fds]}
    for fd in fds:
        os.close(fd)
    if len(argv) > 2:
        result.update(app_rcvbuf(int(argv[2])))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv)
