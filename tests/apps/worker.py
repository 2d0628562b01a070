#!/usr/bin/env python3
"""A background process for berth's tests: prints a tick every 0.2 s."""
import os
import time

n = 0
while True:
    print("tick %d %s" % (n, os.environ.get("BERTH_PROCESS", "?")), flush=True)
    n += 1
    time.sleep(0.2)
