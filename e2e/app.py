#!/usr/bin/python3
"""The e2e test's application: an HTTP server on the sockets that `portbinder exec` passes
with systemd's protocol (LISTEN_FDS, LISTEN_PID), one thread per socket. Every answer says
which socket served it (its inode), and the server's pid and uid."""
import http.server
import os
import socket
import threading

assert os.environ.get("LISTEN_PID") == str(os.getpid()), "not started by portbinder exec"
listeners = [socket.socket(fileno=3 + i) for i in range(int(os.environ["LISTEN_FDS"]))]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        inode = os.fstat(self.server.socket.fileno()).st_ino
        body = f"ino={inode} pid={os.getpid()} uid={os.getuid()}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


for listener in listeners:
    server = http.server.ThreadingHTTPServer(("", 0), Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = listener  # already bound and listening: the daemon's socket
    threading.Thread(target=server.serve_forever, daemon=True).start()
print(f"serving {len(listeners)} sockets as uid {os.getuid()}", flush=True)
threading.Event().wait()
