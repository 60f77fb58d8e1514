#!/usr/bin/python3
"""probe.py: the timed pieces of benches/bench.sh that need a socket.

  probe.py discover SERVER RELAY MAC [TIMEOUT]
      Act as a relay agent on RELAY:67, send one DHCPDISCOVER for MAC to
      SERVER:67 and wait for the DHCPOFFER. Then send a second one for the
      same MAC, answered by the server that is now running. Prints
      "cold_us=N warm_us=N yiaddr=A"; exit 1 if no OFFER came.
  probe.py aasd-fill SOCKET POOL SUBNET COUNT
      Send COUNT ALLOC requests for distinct clients over in.aasd's Unix
      socket, many in flight at a time, as in.dhcpd names its clients.
      Prints "ok=N refused=N".
  probe.py aasd-start BINARY CONFIG SOCKET COUNT
      COUNT times: start "BINARY -f -c CONFIG", time it until SOCKET answers
      PING, read its VmRSS, stop it with SIGTERM. Prints one line per start:
      "start_ms=N rss_kb=N".

Only the standard library, so that the clock is read right beside the
socket calls.
"""

import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time

COOKIE = b"\x63\x82\x53\x63"


def discover_packet(xid, mac, giaddr):
    # RFC 2131 2: op, htype, hlen, hops, xid, secs, flags, ciaddr, yiaddr,
    # siaddr, giaddr, chaddr (16), sname (64), file (128).
    head = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 1, xid, 0, 0,
                       bytes(4), bytes(4), bytes(4), giaddr, mac, b"", b"")
    # 53 DHCPDISCOVER; 55 asks for mask, routers, DNS, lease time.
    opts = bytes([53, 1, 1, 55, 4, 1, 3, 6, 51, 255])
    return (head + COOKIE + opts).ljust(300, b"\0")


def offer_for(data, xid):
    """The offered address if data is the OFFER for xid, else None."""
    if len(data) < 244 or data[0] != 2 or data[236:240] != COOKIE:
        return None
    if struct.unpack("!I", data[4:8])[0] != xid:
        return None
    i = 240
    while i + 2 < len(data) and data[i] != 255:
        if data[i] == 0:
            i += 1
            continue
        if data[i] == 53 and data[i + 2] == 2:
            return socket.inet_ntoa(data[16:20])
        i += 2 + data[i + 1]
    return None


def one_exchange(sock, server, giaddr, mac, deadline):
    """Microseconds from DISCOVER sent to OFFER received, and the address."""
    xid = random.getrandbits(32)
    packet = discover_packet(xid, mac, giaddr)
    start = time.perf_counter_ns()
    sock.sendto(packet, (server, 67))
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None, None
        sock.settimeout(left)
        try:
            data = sock.recv(1500)
        except socket.timeout:
            return None, None
        got = time.perf_counter_ns()
        yiaddr = offer_for(data, xid)
        if yiaddr:
            return (got - start) // 1000, yiaddr


def discover(server, relay, mac, timeout="5"):
    mac_bytes = bytes(int(b, 16) for b in mac.split(":"))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((relay, 67))
    giaddr = socket.inet_aton(relay)
    cold, yiaddr = one_exchange(sock, server, giaddr, mac_bytes,
                                time.monotonic() + float(timeout))
    if cold is None:
        print("cold_us=- warm_us=- yiaddr=-")
        return 1
    warm, _ = one_exchange(sock, server, giaddr, mac_bytes, time.monotonic() + 2)
    print(f"cold_us={cold} warm_us={warm if warm is not None else '-'} yiaddr={yiaddr}")
    return 0


def aasd_fill(path, pool, subnet, count):
    count = int(count)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    answers = sock.makefile("rb")
    ok = refused = 0
    first_refusal = ""
    # in.aasd answers in order and reads pipelined requests; a window of
    # 500 keeps both socket buffers from filling.
    for first in range(0, count, 500):
        last = min(first + 500, count)
        lines = []
        for n in range(first, last):
            mac = "02:%02x:%02x:%02x:%02x:%02x" % (
                (n >> 32) & 255, (n >> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255)
            # A year's lease, so that none ends before the start-up is timed.
            lines.append(f"ALLOC {pool} dhcp {subnet}/1/{mac} 31536000\n")
        sock.sendall("".join(lines).encode())
        for _ in range(first, last):
            line = answers.readline()
            if not line:
                print(f"ok={ok} refused={refused} (connection closed)")
                return 1
            if line.startswith(b"OK"):
                ok += 1
            else:
                refused += 1
                first_refusal = first_refusal or line.decode(errors="replace").strip()
    print(f"ok={ok} refused={refused}" + (f" first: {first_refusal}" if refused else ""))
    return 0 if refused == 0 else 1


def ping(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        s.sendall(b"PING\n")
        return s.makefile("rb").readline().startswith(b"OK")
    except OSError:
        return False
    finally:
        s.close()


def vm_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def aasd_start(binary, config, path, count):
    status = 0
    for _ in range(int(count)):
        start = time.perf_counter_ns()
        proc = subprocess.Popen([binary, "-f", "-c", config],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        up = False
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if ping(path):
                up = True
                break
            time.sleep(0.001)
        elapsed = (time.perf_counter_ns() - start) / 1e6
        if up:
            print(f"start_ms={elapsed:.1f} rss_kb={vm_rss_kb(proc.pid)}", flush=True)
        else:
            print("start_ms=- rss_kb=-", flush=True)
            status = 1
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return status


COMMANDS = {"discover": discover, "aasd-fill": aasd_fill, "aasd-start": aasd_start}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.stderr.write(__doc__)
        sys.exit(2)
    try:
        sys.exit(COMMANDS[sys.argv[1]](*sys.argv[2:]))
    except TypeError:
        sys.stderr.write(__doc__)
        sys.exit(2)
    except OSError as e:
        sys.stderr.write(f"probe.py {sys.argv[1]}: {e}\n")
        sys.exit(1)
