"""A stand-in for systemd as portbinder's service manager: the fd store and a .socket unit.

No systemd runs as PID 1 in bench/run's namespaces, so item 6 plays it with systemd's own
protocols, and the daemon's fd-store and adoption code runs unchanged.
"""
import os
import socket
import sys

from .config import SOCK


class Manager:
    """Plays systemd's part for one daemon, with its real protocols: `socket_unit` holds listening
    sockets for good, as a .socket unit does; `fdstore` gives the daemon a NOTIFY_SOCKET and keeps
    what it sends with FDSTORE=1/FDNAME= (FDSTOREREMOVE=1 drops a name), as FileDescriptorStoreMax=
    does. Every start passes the held and stored sockets with LISTEN_FDS/LISTEN_FDNAMES/LISTEN_PID."""

    def __init__(self, tag, fdstore=False, socket_unit=()):
        self.held = list(socket_unit)  # [(name, socket)]
        self.store = {}                # name -> [socket]
        self.notify = None
        self.messages = []
        if fdstore:
            self.path = f"{SOCK}/notify-{tag}.sock"
            self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.notify.bind(self.path)
            os.chmod(self.path, 0o666)  # the daemon sends after dropping to nobody
            self.notify.setblocking(False)

    def drain(self):
        while self.notify:
            try:
                msg, anc, _flags, _ = self.notify.recvmsg(4096, socket.CMSG_SPACE(253 * 4))
            except BlockingIOError:
                return
            fds = []
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds += [int.from_bytes(data[i:i + 4], sys.byteorder) for i in range(0, len(data) - 3, 4)]
            fields = dict(l.split("=", 1) for l in msg.decode(errors="replace").split("\n") if "=" in l)
            self.messages.append(fields)
            name = fields.get("FDNAME", "stored")
            if fields.get("FDSTORE") == "1":
                self.store.setdefault(name, []).extend(socket.socket(fileno=fd) for fd in fds)
            else:
                for fd in fds:
                    os.close(fd)
            if fields.get("FDSTOREREMOVE") == "1":
                for sk in self.store.pop(name, []):
                    sk.close()

    def spawn_args(self, argv):
        self.drain()
        passed = self.held + [(n, sk) for n, sks in self.store.items() for sk in sks]
        env = dict(os.environ)
        if self.notify:
            env["NOTIFY_SOCKET"] = self.path
        if passed:
            env["LISTEN_FDS"] = str(len(passed))
            env["LISTEN_FDNAMES"] = ":".join(n for n, _ in passed)
        src = [sk.fileno() for _, sk in passed]

        def place():  # in the child, before exec: the sockets at 3, 4, ...
            for i, fd in enumerate(src):
                os.dup2(fd, 500 + i)
            for i in range(len(src)):
                os.dup2(500 + i, 3 + i)
                os.close(500 + i)
        # LISTEN_PID must be the daemon's pid: sh sets it to its own, then execs the daemon.
        return {"args": ["/bin/sh", "-c", 'LISTEN_PID=$$ exec "$@"', "sh"] + argv, "env": env,
                "preexec_fn": place, "close_fds": False}  # Python opens everything else O_CLOEXEC
