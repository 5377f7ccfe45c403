#!/usr/bin/python3
"""Test clients for portbinder's integration tests (Python 3.11 standard library only).

Run as: /usr/bin/python3 client.py MODE ARGS...  (the Rust harness runs it as another uid)

Modes:
  probe SOCKET               fetch once, print one JSON line describing what was received:
                             {"pid", "connect_errno", "payload", "reason", "fds": [{"family",
                             "type", "addr", "listening", "v6only", "cloexec", "inode",
                             "cookie"}]}
  serve-http SOCKET N        fetch, print "ready", answer N HTTP requests on the first fd
  recv-handle SOCKET N       same, but fetch with multiprocessing.reduction.recv_handle
  udp-echo SOCKET N          fetch a datagram socket, print "ready", echo N datagrams
  grants SOCKET COUNT        COUNT sequential fetches, print {"granted": n, "denied": n}
  stall SOCKET COUNT SECS    open COUNT connections, never read, print "stalled", sleep SECS
  vanish SOCKET COUNT        COUNT connections closed at once without reading
  comm NAME SOCKET           set own process name to NAME (backslash escapes decoded), then probe
  set-flags SOCKET FLAGS     fetch, set the file status flags of the first socket (shared with
                             every holder) to FLAGS, names joined by commas (append, async,
                             nonblock), print {"flags": F_GETFL after} and exit
  set-option SOCKET NAME V   fetch, set the socket option NAME (defer_accept, keepalive,
                             reuse_address, receive_buffer, receive_buffer_force: an
                             integer; bind_to_device: an interface name, "" for none) of the
                             first socket to V, print {"value": what getsockopt reads back}
                             and exit
"""

import codecs
import ctypes
import fcntl
import json
import os
import socket
import struct
import sys
import time

# Every blocking operation is bounded so that a broken daemon cannot hang the test suite.
TIMEOUT = 30.0
MAX_FDS = 255
PR_SET_NAME = 15
HTTP_REPLY = "HTTP/1.0 200 OK\r\n\r\nhello from uid {}\n"

FAMILIES = {socket.AF_INET: "AF_INET", socket.AF_INET6: "AF_INET6", socket.AF_UNIX: "AF_UNIX"}
TYPES = {socket.SOCK_STREAM: "SOCK_STREAM", socket.SOCK_DGRAM: "SOCK_DGRAM"}
# SO_COOKIE (asm-generic/socket.h; the socket module has no name for it): a u64 the kernel
# gives each socket, never the same twice until the next boot.
SO_COOKIE = 57


def bounded(sock):
    """Bound every blocking call on SOCK with kernel timeouts, keeping it in blocking mode (a
    Python-level timeout would set O_NONBLOCK, which a dup such as recv_handle's would share)."""
    timeval = struct.pack("ll", int(TIMEOUT), 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
    return sock


def connect(path):
    """Connect a stream Unix socket to PATH (raises OSError on failure).

    The connect is blocking: it waits while the daemon's listen backlog is full, where a
    non-blocking one would fail with EAGAIN at once. SO_SNDTIMEO bounds that wait.
    """
    sock = bounded(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return sock


def receive(sock):
    """One protocol exchange on a connected socket: returns (payload bytes, list of fds).

    Reads the first message with its SCM_RIGHTS, then the rest of the stream until the daemon
    closes it (a deny reason may arrive in more than one segment).
    """
    msg, fds, _flags, _addr = socket.recv_fds(sock, 4096, MAX_FDS)
    payload = bytearray(msg)
    if msg:
        while more := sock.recv(4096):
            payload += more
    return bytes(payload), fds


def fetch(path):
    """Connect to PATH and receive: returns (payload bytes, list of fds)."""
    with connect(path) as sock:
        return receive(sock)


def describe_fd(fd):
    """What the test needs to know about a received socket fd."""
    cloexec = bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)
    inode = os.fstat(fd).st_ino
    # dup() so that closing the Python object does not close the caller's fd.
    with socket.socket(fileno=os.dup(fd)) as sock:
        family = sock.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN)
        stype = sock.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE)
        listening = bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
        v6only = None
        if family == socket.AF_INET6:
            v6only = bool(sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY))
        name = sock.getsockname()
        addr = list(name[:2]) if isinstance(name, tuple) else [name, 0]
        (cookie,) = struct.unpack("Q", sock.getsockopt(socket.SOL_SOCKET, SO_COOKIE, 8))
    return {
        "family": FAMILIES.get(family, str(family)),
        "type": TYPES.get(stype, str(stype)),
        "addr": addr,
        "listening": listening,
        "v6only": v6only,
        "cloexec": cloexec,
        "inode": inode,
        "cookie": cookie,
    }


def probe(path):
    result = {"pid": os.getpid(), "connect_errno": None, "payload": [], "reason": None, "fds": []}
    try:
        sock = connect(path)
    except OSError as err:
        result["connect_errno"] = err.errno
        print(json.dumps(result), flush=True)
        return
    with sock:
        payload, fds = receive(sock)
    result["payload"] = list(payload)
    if payload[:1] == b"\x00":
        result["reason"] = payload[1:].decode("utf-8", errors="replace")
    result["fds"] = [describe_fd(fd) for fd in fds]
    for fd in fds:
        os.close(fd)
    print(json.dumps(result), flush=True)


def fetch_first(path):
    """Fetch and return the first granted fd; exit 1 with a JSON explanation otherwise."""
    payload, fds = fetch(path)
    if not fds or payload[:1] == b"\x00":
        print(json.dumps({"error": "not granted", "payload": list(payload)}), flush=True)
        sys.exit(1)
    for fd in fds[1:]:
        os.close(fd)
    return fds[0]


def serve_http(listener, count):
    """Answer COUNT connections on LISTENER with the fixed HTTP reply."""
    listener.settimeout(TIMEOUT)
    reply = HTTP_REPLY.format(os.getuid()).encode()
    for _ in range(count):
        conn, _addr = listener.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            conn.sendall(reply)
            conn.shutdown(socket.SHUT_WR)
            # Drain until the peer closes, so that unread request bytes never turn into a RST.
            try:
                while conn.recv(4096):
                    pass
            except OSError:
                pass


def mode_serve_http(path, count):
    with socket.socket(fileno=fetch_first(path)) as listener:
        print("ready", flush=True)
        serve_http(listener, count)


def mode_recv_handle(path, count):
    # The gist's client, unmodified: multiprocessing's own receiving side.
    from multiprocessing.reduction import recv_handle

    with connect(path) as conn:
        fd = recv_handle(conn)
    with socket.socket(fileno=fd) as listener:
        print("ready", flush=True)
        serve_http(listener, count)


def mode_udp_echo(path, count):
    with socket.socket(fileno=fetch_first(path)) as sock:
        sock.settimeout(TIMEOUT)
        print("ready", flush=True)
        for _ in range(count):
            data, addr = sock.recvfrom(65535)
            sock.sendto(data, addr)


def mode_grants(path, count):
    granted = denied = 0
    for _ in range(count):
        payload, fds = fetch(path)
        if fds and payload[:1] not in (b"", b"\x00"):
            granted += 1
        else:
            denied += 1
        for fd in fds:
            os.close(fd)
    print(json.dumps({"granted": granted, "denied": denied}), flush=True)


def mode_stall(path, count, seconds):
    conns = [connect(path) for _ in range(count)]
    print("stalled", flush=True)
    time.sleep(min(seconds, 120.0))
    for conn in conns:
        conn.close()


def mode_vanish(path, count):
    for _ in range(count):
        connect(path).close()
    print(json.dumps({"vanished": count}), flush=True)


def mode_comm(name, path):
    raw = codecs.decode(name, "unicode_escape").encode("latin-1")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NAME, ctypes.c_char_p(raw), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    probe(path)


def mode_set_flags(path, names):
    fd = fetch_first(path)
    bits = {"append": os.O_APPEND, "async": os.O_ASYNC, "nonblock": os.O_NONBLOCK}
    flags = 0
    for name in filter(None, names.split(",")):
        flags |= bits[name]
    fcntl.fcntl(fd, fcntl.F_SETFL, flags)
    print(json.dumps({"flags": fcntl.fcntl(fd, fcntl.F_GETFL)}), flush=True)
    os.close(fd)


SO_RCVBUFFORCE = 33  # not in Python's socket module

# name: (level, option set, option read back)
OPTIONS = {
    "defer_accept": (socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, socket.TCP_DEFER_ACCEPT),
    "keepalive": (socket.SOL_SOCKET, socket.SO_KEEPALIVE, socket.SO_KEEPALIVE),
    "reuse_address": (socket.SOL_SOCKET, socket.SO_REUSEADDR, socket.SO_REUSEADDR),
    "receive_buffer": (socket.SOL_SOCKET, socket.SO_RCVBUF, socket.SO_RCVBUF),
    "receive_buffer_force": (socket.SOL_SOCKET, SO_RCVBUFFORCE, socket.SO_RCVBUF),
}


def mode_set_option(path, name, value):
    with socket.socket(fileno=fetch_first(path)) as sock:
        if name == "bind_to_device":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, value.encode())
            read = sock.getsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, 16)
            print(json.dumps({"value": read.rstrip(b"\0").decode()}), flush=True)
            return
        level, option, read = OPTIONS[name]
        sock.setsockopt(level, option, int(value))
        print(json.dumps({"value": sock.getsockopt(level, read)}), flush=True)


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    mode, args = argv[1], argv[2:]
    if mode == "probe":
        probe(args[0])
    elif mode == "serve-http":
        mode_serve_http(args[0], int(args[1]))
    elif mode == "recv-handle":
        mode_recv_handle(args[0], int(args[1]))
    elif mode == "udp-echo":
        mode_udp_echo(args[0], int(args[1]))
    elif mode == "grants":
        mode_grants(args[0], int(args[1]))
    elif mode == "stall":
        mode_stall(args[0], int(args[1]), float(args[2]))
    elif mode == "vanish":
        mode_vanish(args[0], int(args[1]))
    elif mode == "comm":
        mode_comm(args[0], args[1])
    elif mode == "set-flags":
        mode_set_flags(args[0], args[1])
    elif mode == "set-option":
        mode_set_option(args[0], args[1], args[2])
    else:
        sys.exit("unknown mode: " + mode)


if __name__ == "__main__":
    main(sys.argv)
