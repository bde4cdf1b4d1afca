"""Loss injection in user space (these kernels have no netem): an NFQUEUE
verdict program that drops RTP packets with a seeded random generator and
records exactly which sequence numbers it dropped, per SSRC, so the test knows
the truth. Runs inside the sender's namespace:

    python3 nfq_dropper.py QUEUE_NUM LOSS SEED OUT.json

It stops on SIGTERM and writes {ssrc: {"dropped": [seq...], "passed": [seq...]}}.
"""
import json
import random
import signal
import struct
import sys
import time

from netfilterqueue import NetfilterQueue


def main() -> int:
    queue, loss, seed, out = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    rng = random.Random(seed)
    seen: dict = {}
    nfq = NetfilterQueue()
    stop = []

    def verdict(pkt):
        data = pkt.get_payload()
        ihl = (data[0] & 15) * 4
        rtp = data[ihl + 8:]
        if len(rtp) >= 12 and rtp[0] >> 6 == 2:
            seq = struct.unpack_from("!H", rtp, 2)[0]
            ssrc = struct.unpack_from("!I", rtp, 8)[0]
            entry = seen.setdefault(str(ssrc), {"dropped": [], "passed": []})
            if rng.random() < loss:
                entry["dropped"].append(seq)
                pkt.drop()
                return
            entry["passed"].append(seq)
        pkt.accept()

    nfq.bind(queue, verdict)
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    print("ready", flush=True)
    while not stop:
        nfq.run(block=False)
        time.sleep(0.002)
    nfq.unbind()
    with open(out, "w") as fh:
        json.dump(seen, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
