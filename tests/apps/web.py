#!/usr/bin/env python3
"""A small web app for berth's tests: standard library only.

GET /        "hello VERSION release N pid P"
GET /env     the environment, KEY=VALUE lines
GET /health  200 (or 500 while HEALTH_FAIL is set)
GET /crash   exits with status 3
Prints one line per request to stdout, so it shows in berth's log.
On SIGTERM it stops accepting, finishes the requests it has, and exits,
as a well-behaved app does when berth retires its release.
"""
import http.server
import os
import signal
import sys
import threading
import time

VERSION = os.environ.get("APP_VERSION", "v0")
if os.path.exists("VERSION"):
    VERSION = open("VERSION").read().strip()


LOCK = threading.Lock()
INFLIGHT = [0]


class Server(http.server.ThreadingHTTPServer):
    # socketserver's default backlog of 5 resets connections under load
    request_queue_size = 128


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, code, body):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        with LOCK:
            INFLIGHT[0] += 1
        try:
            self.answer()
        finally:
            with LOCK:
                INFLIGHT[0] -= 1

    def answer(self):
        if self.path == "/env":
            self.reply(200, "".join("%s=%s\n" % kv for kv in sorted(os.environ.items())))
        elif self.path == "/health":
            self.reply(500 if os.environ.get("HEALTH_FAIL") else 200, "ok\n")
        elif self.path == "/crash":
            self.reply(200, "bye\n")
            sys.stdout.flush()
            os._exit(3)
        else:
            self.reply(200, "hello %s release %s pid %d\n" % (
                VERSION, os.environ.get("BERTH_RELEASE", "?"), os.getpid()))
        print("request %s %s" % (self.command, self.path), flush=True)

    def log_message(self, fmt, *args):
        pass


def main():
    port = int(os.environ["PORT"])
    server = Server(("127.0.0.1", port), Handler)
    server.daemon_threads = True

    def drain():
        # Stop accepting, close the listening socket (what waits in its
        # backlog is refused and retried elsewhere by nginx), finish the
        # requests in flight, then exit.
        server.shutdown()
        server.socket.close()
        deadline = time.time() + 5
        while INFLIGHT[0] > 0 and time.time() < deadline:
            time.sleep(0.01)
        print("stopped", flush=True)
        os._exit(0)

    # The handler only sets an event: starting a thread inside a signal
    # handler can deadlock if the signal lands inside Thread.start().
    term = threading.Event()

    def wait_for_term():
        term.wait()
        drain()

    threading.Thread(target=wait_for_term, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda signum, frame: term.set())
    print("listening on %d version %s" % (port, VERSION), flush=True)
    server.serve_forever(poll_interval=0.05)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
