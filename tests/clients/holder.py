#!/usr/bin/python3
"""A process that binds an address itself and holds the socket, for the recovery tests
(Python 3.11 standard library only). Run as: /usr/bin/python3 holder.py PROTO HOST PORT [OPTION...]

  PROTO    tcp (listening, backlog 16) or udp
  OPTION   reuseport   set SO_REUSEPORT before bind(2), so that several holders may bind
           dual        leave an IPv6 socket dual-stack (IPV6_V6ONLY 0)
           drop=UID    after binding (as root), switch to uid and gid UID with no groups

Prints one JSON line {"pid", "uid", "inode"} once it holds the socket, then holds it for at
most 120 seconds; the harness kills it at the end of the test, and it dies with its parent.
"""

import ctypes
import json
import os
import socket
import sys
import time

PR_SET_PDEATHSIG = 1


def main(argv):
    proto, host, port, options = argv[1], argv[2], int(argv[3]), argv[4:]
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(family, kind)
    if "reuseport" in options:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if "dual" in options else 1)
    sock.bind((host, port))
    if kind == socket.SOCK_STREAM:
        sock.listen(16)
    for option in options:
        if option.startswith("drop="):
            uid = int(option.split("=", 1)[1])
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
    # After the uid change, which clears it: die with the test that started us.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)
    if os.getppid() == 1:
        sys.exit("parent gone")
    print(json.dumps({"pid": os.getpid(), "uid": os.geteuid(), "inode": os.fstat(sock.fileno()).st_ino}),
          flush=True)
    time.sleep(120.0)


if __name__ == "__main__":
    main(sys.argv)
