#!/usr/bin/env python3
"""How soon a scanner's first probe reaches the wire.

    firstprobe.py SINK_NS SINK_IF SECONDS -- COMMAND...

Starts COMMAND in a session of its own (e.g. `/usr/bin/time ... ip netns
exec NS flagscan ...`; time measures the peak memory), watches the receive
counter of SINK_IF inside SINK_NS every 2 ms until it moves (the first
probe arrived), and after SECONDS sends SIGINT to the session, as Ctrl-C
would, then SIGKILL 30 s later. Prints one line: `first_s packets rc`
(first_s is `-` if nothing arrived within SECONDS).
"""

import os
import signal
import subprocess
import sys
import time


def rx(ns, iface):
    path = f"/sys/class/net/{iface}/statistics/rx_packets"
    out = subprocess.run(["ip", "netns", "exec", ns, "cat", path], capture_output=True, text=True)
    return int(out.stdout.strip() or 0)


def main():
    if len(sys.argv) < 6 or sys.argv[4] != "--":
        sys.exit(__doc__)
    ns, iface, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    cmd = sys.argv[5:]
    # The counter is read through `ip netns exec` once here; in the loop the
    # sysfs file is read from inside the namespace by a reader kept open.
    base = rx(ns, iface)
    reader = subprocess.Popen(
        ["ip", "netns", "exec", ns, "sh", "-c",
         f"while read _; do cat /sys/class/net/{iface}/statistics/rx_packets; done"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def count():
        reader.stdin.write("\n")
        reader.stdin.flush()
        return int(reader.stdout.readline().strip() or 0) - base

    start = time.monotonic()
    scanner = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    first = None
    while time.monotonic() - start < seconds and scanner.poll() is None:
        if first is None and count() > 0:
            first = time.monotonic() - start
        time.sleep(0.002 if first is None else 0.05)
    if scanner.poll() is None:
        os.killpg(scanner.pid, signal.SIGINT)
        try:
            scanner.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(scanner.pid, signal.SIGKILL)
            scanner.wait()
    packets = count()
    reader.stdin.close()
    reader.wait()
    first_s = "-" if first is None else f"{first:.3f}"
    print(f"{first_s} {packets} {scanner.returncode}")


if __name__ == "__main__":
    main()
