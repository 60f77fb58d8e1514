#!/usr/bin/python3
"""relay-probe.py SERVER GIADDR MAC AGENT_HEX: send a DISCOVER as a relay
agent would (from port 67, hops 1, giaddr set, option 82 = AGENT_HEX) and
print the reply's yiaddr and options as JSON, or TIMEOUT."""
import json, random, socket, struct, sys

server, giaddr, mac, agent = sys.argv[1:5]
xid = random.getrandbits(32)
hdr = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 1, xid, 0, 0, bytes(4), bytes(4),
                  bytes(4), socket.inet_aton(giaddr),
                  bytes.fromhex(mac.replace(":", "")).ljust(16, b"\0"), b"", b"")
a = bytes.fromhex(agent)
pkt = hdr + b"\x63\x82\x53\x63" + bytes([53, 1, 1, 55, 2, 1, 3, 82, len(a)]) + a + b"\xff"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((giaddr, 67))
s.settimeout(3)
s.sendto(pkt, (server, 67))
try:
    while True:
        data = s.recv(65535)
        if struct.unpack("!I", data[4:8])[0] == xid:
            break
except socket.timeout:
    print("TIMEOUT")
    sys.exit(1)
opts, i = {}, 240
while i < len(data) and data[i] != 255:
    if data[i] == 0:
        i += 1
        continue
    opts[str(data[i])] = data[i + 2:i + 2 + data[i + 1]].hex()
    i += 2 + data[i + 1]
print(json.dumps({"yiaddr": socket.inet_ntoa(data[16:20]), "options": opts}))
