#!/usr/bin/python3
"""A server that fetches its listening socket from portbinder instead of binding it.

Usage: hello_server.py [SOCKET]   (default /run/portbinder/http.sock)

It uses nothing but Python's standard library: multiprocessing.reduction.recv_handle
is the client side of portbinder's protocol for a binding with one address.
"""
import http.server
import socket
import sys
from multiprocessing.reduction import recv_handle

path = sys.argv[1] if len(sys.argv) > 1 else "/run/portbinder/http.sock"
with socket.socket(socket.AF_UNIX) as conn:
    conn.connect(path)
    fd = recv_handle(conn)  # raises if portbinder denies the request
listener = socket.socket(fileno=fd)


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello from an unprivileged server on port %d\n" % listener.getsockname()[1]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = http.server.HTTPServer(listener.getsockname()[:2], Hello, bind_and_activate=False)
server.socket = listener  # the already-bound, already-listening socket
print(f"serving on {listener.getsockname()[:2]} as uid {__import__('os').getuid()}", flush=True)
server.serve_forever()
