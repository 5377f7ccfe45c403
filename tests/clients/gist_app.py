#!/usr/bin/python3
"""The fdserver gist's client app, written anew for the tests (tests/sockopts.rs).

It does what the gist's testserver.py does, in the same order and nothing more: parse
Tornado's options (--unix_socket), connect an AF_UNIX socket to that path, receive the
listening socket with multiprocessing.reduction.recv_handle, and serve it with a Tornado
Application whose one handler writes "Hello from <pid>". It never touches the socket's
blocking mode: Tornado's accept loop expects a non-blocking socket, which the gist's
server made with bind_sockets and portbinder makes with `nonblocking = true`.

Run as: /usr/bin/python3 gist_app.py --unix_socket=/run/portbinder/http.sock
(needs Debian's python3-tornado).
"""

import os
import socket
from multiprocessing.reduction import recv_handle

from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.options import define, options, parse_command_line
from tornado.web import Application, RequestHandler

define("unix_socket", default="/tmp/fdserver.sock")


class HelloHandler(RequestHandler):
    def get(self):
        self.write("Hello from %d" % os.getpid())


def main():
    parse_command_line()
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(options.unix_socket)
    fd = recv_handle(sock)
    app = Application([("/", HelloHandler)])
    server = HTTPServer(app)
    server.add_socket(socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM))
    IOLoop.current().start()


if __name__ == "__main__":
    main()
