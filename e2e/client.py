#!/usr/bin/python3
"""HTTP clients for the e2e test (standard library only).

  client.py get HOST            one GET to HOST:80, print the body (exit 1 on any error)
  client.py hammer STOPFILE     GETs to 127.0.0.1:80 and [::1]:80 back to back until STOPFILE
                              exists; print {"ok", "failed", "errors", "answers"} as JSON
"""
import json
import os
import socket
import sys
import time


def get(host):
    with socket.create_connection((host, 80), timeout=5) as conn:
        conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
        reply = b""
        while chunk := conn.recv(4096):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.0 200"):
        raise OSError(f"bad reply {reply[:80]!r}")
    return body.decode()


def hammer(stopfile):
    ok, failed, errors, answers = 0, 0, [], set()
    while not os.path.exists(stopfile):
        for host in ("127.0.0.1", "::1"):
            try:
                answers.add(get(host).split()[0])
                ok += 1
            except OSError as e:
                failed += 1
                errors.append(f"{host}: {e}")
        time.sleep(0.005)
    print(json.dumps({"ok": ok, "failed": failed, "errors": errors[:5], "answers": sorted(answers)}))


if __name__ == "__main__":
    if sys.argv[1] == "get":
        try:
            print(get(sys.argv[2]), end="")
        except OSError as e:
            sys.exit(f"GET {sys.argv[2]}:80 failed: {e}")
    else:
        hammer(sys.argv[2])
