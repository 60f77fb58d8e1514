#!/usr/bin/python3
"""Send one DHCP message from a client interface and print the reply.

For what real clients cannot be made to send: INFORM, a REQUEST naming a
chosen address, raw malformed bytes. Plain sockets bound to the interface;
the reply is printed as one JSON line, or TIMEOUT (exit 1).
"""
import argparse, json, os, random, socket, struct, sys, time

TYPES = {"discover": 1, "request": 3, "decline": 4, "release": 7, "inform": 8}


def build(a):
    xid = random.getrandbits(32)
    mac = bytes.fromhex(a.mac.replace(":", ""))
    flags = 0x8000 if a.broadcast else 0
    hdr = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, flags,
                      socket.inet_aton(a.ciaddr), bytes(4), bytes(4), bytes(4),
                      mac.ljust(16, b"\0"), b"", b"")
    opts = bytes([53, 1, TYPES[a.type]])
    if a.requested:
        opts += bytes([50, 4]) + socket.inet_aton(a.requested)
    if a.server_id:
        opts += bytes([54, 4]) + socket.inet_aton(a.server_id)
    if a.prl:
        codes = [int(c) for c in a.prl.split(",")]
        opts += bytes([55, len(codes)] + codes)
    for o in a.opt:
        code, val = o.split(":", 1)
        v = bytes.fromhex(val)
        opts += bytes([int(code), len(v)]) + v
    pkt = hdr + b"\x63\x82\x53\x63" + opts + b"\xff"
    return xid, pkt.ljust(300, b"\0")


def parse(b):
    out = {"op": b[0], "xid": struct.unpack("!I", b[4:8])[0],
           "flags": struct.unpack("!H", b[10:12])[0],
           "ciaddr": socket.inet_ntoa(b[12:16]), "yiaddr": socket.inet_ntoa(b[16:20]),
           "siaddr": socket.inet_ntoa(b[20:24]), "giaddr": socket.inet_ntoa(b[24:28]),
           "file": b[108:236].split(b"\0")[0].decode("ascii", "replace"),
           "len": len(b), "options": {}, "order": []}
    i = 240
    while i < len(b) and b[i] != 255:
        if b[i] == 0:
            i += 1
            continue
        code, ln = b[i], b[i + 1]
        out["options"][str(code)] = out["options"].get(str(code), "") + b[i + 2:i + 2 + ln].hex()
        out["order"].append(code)
        i += 2 + ln
    t = out["options"].get("53")
    out["type"] = {2: "offer", 5: "ack", 6: "nak"}.get(int(t, 16), t) if t else None
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("iface")
    p.add_argument("--type", default="discover", choices=TYPES)
    p.add_argument("--mac", default="02:77:00:00:00:10")
    p.add_argument("--ciaddr", default="0.0.0.0")
    p.add_argument("--requested")
    p.add_argument("--server-id")
    p.add_argument("--prl")
    p.add_argument("--opt", action="append", default=[], help="CODE:HEX")
    p.add_argument("--broadcast", action="store_true")
    p.add_argument("--dst", default="255.255.255.255")
    p.add_argument("--raw", help="send these hex bytes as they are, wait for nothing")
    p.add_argument("--timeout", type=float, default=3)
    a = p.parse_args()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, a.iface.encode())
    s.bind(("0.0.0.0", 68))
    if a.raw is not None:
        s.sendto(bytes.fromhex(a.raw), (a.dst, 67))
        print("SENT")
        return 0
    xid, pkt = build(a)
    t0 = time.monotonic()
    s.sendto(pkt, (a.dst, 67))
    end = time.time() + a.timeout
    while time.time() < end:
        s.settimeout(max(0.01, end - time.time()))
        try:
            data = s.recv(65535)
        except socket.timeout:
            break
        if len(data) >= 240 and data[0] == 2 and struct.unpack("!I", data[4:8])[0] == xid:
            reply = parse(data)
            reply["elapsed_ms"] = round((time.monotonic() - t0) * 1000, 3)
            print(json.dumps(reply))
            return 0
    print("TIMEOUT")
    return 1


sys.exit(main())
