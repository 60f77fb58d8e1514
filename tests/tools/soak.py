#!/usr/bin/python3
"""Send a mixed stream of datagrams at a DHCP server: DISCOVERs and REQUESTs
from random MACs (posing as a relay, so each reaches the AAS), mutated
packets and random bytes. For the soak test: memory and file descriptors
must stay flat. Usage: soak.py server count seed giaddr"""
import random, socket, struct, sys

server, count, seed, giaddr = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = random.Random(seed)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)


def request(kind):
    mac = bytes([2]) + rng.randbytes(5)
    hdr = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 1, rng.getrandbits(32), 0, 0,
                      bytes(4), bytes(4), bytes(4), socket.inet_aton(giaddr),
                      mac.ljust(16, b"\0"), b"", b"")
    opts = bytes([53, 1, kind, 12, 8]) + rng.randbytes(8)
    if kind == 3:
        opts += bytes([50, 4, 10, 77, 0, rng.randrange(100, 121), 54, 4, 10, 77, 0, 1])
    return bytearray((hdr + b"\x63\x82\x53\x63" + opts + b"\xff").ljust(300, b"\0"))


sent = 0
while sent < count:
    roll = rng.random()
    if roll < 0.4:
        data = request(1)
    elif roll < 0.6:
        data = request(3)
    elif roll < 0.9:
        data = request(rng.choice([1, 3, 4, 7, 8]))
        for _ in range(rng.randrange(1, 6)):
            at = rng.randrange(len(data))
            data[at] = rng.getrandbits(8)
        if rng.random() < 0.3:
            del data[rng.randrange(len(data)):]
    else:
        data = rng.randbytes(rng.randrange(0, 700))
    try:
        sock.sendto(bytes(data), (server, 67))
        sent += 1
    except BlockingIOError:
        pass
    except OSError:
        sent += 1
print(sent)
