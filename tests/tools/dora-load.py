#!/usr/bin/python3
"""A relay-posing load client: DISCOVER, OFFER, REQUEST, ACK for many MACs.

Binds giaddr:67 (run it in the relay namespace), so every reply comes back
to it. Retries each step while the server is silent (the AAS may be down).
Prints one JSON line per ACK: {"mac": ..., "ip": ...}, flushed at once, so
a test reading the output knows every ACK the "client" saw.
"""
import argparse, json, os, socket, struct, sys, time

from relay_wire import packet, reply


def ask(s, server, pkt, xid, want, limit):
    """Send until a reply of a wanted kind comes, or the limit passes."""
    while time.monotonic() < limit:
        s.sendto(pkt, (server, 67))
        end = time.monotonic() + 0.4
        while time.monotonic() < end:
            s.settimeout(max(0.01, end - time.monotonic()))
            try:
                r = reply(s.recv(4096))
            except socket.timeout:
                break
            if r and r[0] == xid and r[1] in want:
                return r[1:]
    return None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("server")
    p.add_argument("giaddr")
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--prefix", default="0277aa")
    p.add_argument("--pause", type=float, default=0, help="seconds between clients")
    a = p.parse_args()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.giaddr, 67))
    limit = time.monotonic() + a.seconds
    for n in range(a.count):
        mac = bytes.fromhex(a.prefix) + n.to_bytes(3, "big")
        while time.monotonic() < limit:
            xid = int.from_bytes(os.urandom(4), "big")
            offer = ask(s, a.server, packet(xid, mac, a.giaddr, 1), xid, (2,), limit)
            if not offer:
                break
            ack = ask(s, a.server, packet(xid, mac, a.giaddr, 3, offer[1], offer[2]),
                      xid, (5, 6), min(limit, time.monotonic() + 3))
            if ack and ack[0] == 5:
                print(json.dumps({"mac": mac.hex(":"), "ip": ack[1]}), flush=True)
                break
        time.sleep(a.pause)
    return 0


sys.exit(main())
