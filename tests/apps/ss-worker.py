#!/usr/bin/python3
"""A server program for the start_server tests: standard library only.

Takes its sockets from SERVER_STARTER_PORT (or, with SS_SYSTEMD=1, from
LISTEN_FDS at fd 3 and up) and answers each connection on a stream socket
with "gen=G name=NAME" and a newline.  Everything it has to say goes to
files in $SS_OUT, never to stdout, so that the superdaemon's own output
can be compared line by line:
  gen-G.env     the variables named in $SS_SHOW ("cwd": the folder)
  signals       "gen=G SIGNAL TIME" for each signal it gets
On a signal it exits, after waiting while $SS_OUT/hold exists.
"""
import os
import signal
import socket
import sys
import threading
import time

OUT = os.environ["SS_OUT"]
GEN = os.environ.get("SERVER_STARTER_GENERATION", "?")


def write_atomic(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def sockets():
    if os.environ.get("SS_SYSTEMD") == "1":
        if os.environ.get("LISTEN_PID") != str(os.getpid()):
            sys.exit("LISTEN_PID is not this process")
        names = os.environ.get("LISTEN_FDNAMES", "").split(":")
        n = int(os.environ["LISTEN_FDS"])
        return [(names[i], 3 + i) for i in range(n)]
    spec = os.environ.get("SERVER_STARTER_PORT", "")
    return [(e.rsplit("=", 1)[0], int(e.rsplit("=", 1)[1]))
            for e in spec.split(";") if e]


def serve(name, sock):
    while True:
        conn, _ = sock.accept()
        try:
            conn.sendall(("gen=%s name=%s\n" % (GEN, name)).encode())
        finally:
            conn.close()


def on_signal(signum, frame):
    with open(os.path.join(OUT, "signals"), "a") as f:
        f.write("gen=%s %s %.3f\n" % (GEN, signal.Signals(signum).name[3:],
                                      time.time()))
    while os.path.exists(os.path.join(OUT, "hold")):
        time.sleep(0.05)
    os._exit(0)


for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1,
          signal.SIGUSR2):
    signal.signal(s, on_signal)
show = os.environ.get("SS_SHOW", "SERVER_STARTER_PORT").split()
lines = ["%s=%s" % (k, os.getcwd() if k == "cwd" else
                    os.environ.get(k, "<unset>")) for k in show]
for name, fd in sockets():
    sock = socket.socket(fileno=fd)
    if sock.type == socket.SOCK_STREAM:
        threading.Thread(target=serve, args=(name, sock), daemon=True).start()
write_atomic(os.path.join(OUT, "gen-%s.env" % GEN), "\n".join(lines) + "\n")
while True:
    signal.pause()
