#!/usr/bin/python3
"""DHCP load posing as a relay agent: DISCOVERs from fresh random MACs at
a set rate; with --dora, the REQUEST for each OFFER too (a starvation
flood). Binds giaddr:67 (run it where that address is), so every reply
comes back to it. With --circuit, each request carries option 82 with
that circuit id. Prints one JSON line when done: how many DISCOVERs went
out and how many OFFERs, ACKs and NAKs came back.
"""
import argparse, json, os, select, socket, struct, sys, time


def packet(xid, mac, giaddr, kind, circuit, requested=None, server=None):
    hdr = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 1, xid, 0, 0,
                      bytes(4), bytes(4), bytes(4), socket.inet_aton(giaddr),
                      mac.ljust(16, b"\0"), b"", b"")
    opts = bytes([53, 1, kind])
    if requested:
        opts += bytes([50, 4]) + socket.inet_aton(requested)
    if server:
        opts += bytes([54, 4]) + socket.inet_aton(server)
    if circuit:
        opts += bytes([82, len(circuit) + 2, 1, len(circuit)]) + circuit
    return (hdr + b"\x63\x82\x53\x63" + opts + b"\xff").ljust(300, b"\0")


def reply(data):
    if len(data) < 240 or data[0] != 2:
        return None
    i, kind, sid = 240, None, None
    while i + 1 < len(data) and data[i] != 255:
        if data[i] == 0:
            i += 1
            continue
        code, ln = data[i], data[i + 1]
        if code == 53:
            kind = data[i + 2]
        if code == 54:
            sid = socket.inet_ntoa(data[i + 2:i + 6])
        i += 2 + ln
    return struct.unpack("!I", data[4:8])[0], kind, socket.inet_ntoa(data[16:20]), sid


def main():
    p = argparse.ArgumentParser()
    p.add_argument("server")
    p.add_argument("giaddr")
    p.add_argument("--rate", type=float, default=100, help="DISCOVERs a second")
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--dora", action="store_true")
    p.add_argument("--circuit", default="", help="option 82 circuit id (text)")
    a = p.parse_args()
    circuit = a.circuit.encode()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.giaddr, 67))
    s.setblocking(False)
    macs, count = {}, {"sent": 0, "offers": 0, "acks": 0, "naks": 0}
    t0 = time.monotonic()
    end = t0 + a.seconds
    while True:
        now = time.monotonic()
        due = t0 + count["sent"] / a.rate
        if now >= end:
            break
        if now >= due:
            xid = int.from_bytes(os.urandom(4), "big")
            mac = b"\x02" + os.urandom(5)
            macs[xid] = mac
            s.sendto(packet(xid, mac, a.giaddr, 1, circuit), (a.server, 67))
            count["sent"] += 1
            continue
        if not select.select([s], [], [], min(due, end) - now)[0]:
            continue
        while True:
            try:
                r = reply(s.recv(4096))
            except BlockingIOError:
                break
            if not r or r[0] not in macs:
                continue
            xid, kind, yiaddr, sid = r
            if kind == 2:
                count["offers"] += 1
                if a.dora:
                    s.sendto(packet(xid, macs[xid], a.giaddr, 3, circuit, yiaddr, sid),
                             (a.server, 67))
            elif kind == 5:
                count["acks"] += 1
            elif kind == 6:
                count["naks"] += 1
    print(json.dumps(count), flush=True)
    return 0


sys.exit(main())
