#!/usr/bin/python3
"""relay-probe.py SERVER GIADDR MAC AGENT_HEX [--hops N] [--extra HEX] [--timeout S]

Send a DISCOVER as a relay agent would (from GIADDR port 67, giaddr set,
option 82 = AGENT_HEX unless empty) and print the reply's yiaddr and options
as JSON, or TIMEOUT (exit 1). --extra adds raw option bytes before 82."""
import argparse, json, random, socket, struct, sys

p = argparse.ArgumentParser()
for name in ("server", "giaddr", "mac", "agent"):
    p.add_argument(name)
p.add_argument("--hops", type=int, default=1)
p.add_argument("--extra", default="")
p.add_argument("--timeout", type=float, default=3)
a = p.parse_args()
xid = random.getrandbits(32)
hdr = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, a.hops, xid, 0, 0, bytes(4), bytes(4),
                  bytes(4), socket.inet_aton(a.giaddr),
                  bytes.fromhex(a.mac.replace(":", "")).ljust(16, b"\0"), b"", b"")
opts = bytes([53, 1, 1, 55, 2, 1, 3]) + bytes.fromhex(a.extra)
agent = bytes.fromhex(a.agent)
if agent:
    opts += bytes([82, len(agent)]) + agent
pkt = hdr + b"\x63\x82\x53\x63" + opts + b"\xff"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((a.giaddr, 67))
s.settimeout(a.timeout)
s.sendto(pkt, (a.server, 67))
try:
    while True:
        data = s.recv(65535)
        if struct.unpack("!I", data[4:8])[0] == xid:
            break
except socket.timeout:
    print("TIMEOUT")
    sys.exit(1)
out, i = {}, 240
while i < len(data) and data[i] != 255:
    if data[i] == 0:
        i += 1
        continue
    out[str(data[i])] = data[i + 2:i + 2 + data[i + 1]].hex()
    i += 2 + data[i + 1]
print(json.dumps({"yiaddr": socket.inet_ntoa(data[16:20]), "options": out}))
