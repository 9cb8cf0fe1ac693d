#!/usr/bin/env python3
"""Turns a packet capture's WebSocket text frames into records `squall validate` checks per
connection: {"conn", "dir", "at", "frame"} per line, in capture order.

    tshark -r capture.pcapng -Y websocket.payload.text -T fields -E aggregator=$'\\x1e' \\
        -e tcp.stream -e tcp.dstport -e frame.time_epoch -e websocket.payload.text \\
      | python3 tools/tshark-records.py --server-port 8080 > recording.jsonl
    squall validate --protocol kite recording.jsonl

tshark unmasks client frames and reassembles fragmented messages; several messages in one TCP
segment come as one line, joined by the aggregator (U+001E). `dir` is "out" for frames sent to
the server's port, "in" for the rest; `conn` is tshark's TCP stream number.
"""

import argparse
import datetime
import json
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server-port", type=int, required=True, help="the WebSocket server's TCP port")
    a = ap.parse_args()
    for line in sys.stdin:
        parts = line.rstrip("\n").split("\t", 3)
        if len(parts) != 4:
            continue
        stream, dport, epoch, texts = parts
        at = datetime.datetime.fromtimestamp(float(epoch), datetime.timezone.utc)
        stamp = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        direction = "out" if int(dport) == a.server_port else "in"
        for text in texts.split("\x1e"):
            record = {"conn": f"tcp{stream}", "dir": direction, "at": stamp, "frame": text}
            print(json.dumps(record, ensure_ascii=False))


if __name__ == "__main__":
    main()
