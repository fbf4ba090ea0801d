"""``python3 -m simulator.wechat_peer --port 18150 --json``"""

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from .crypto import Keys
from .server import WeChatPeer


def main(argv=None):
    parser = argparse.ArgumentParser(description="Local WeChat Pay APIv3 peer")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18150)
    parser.add_argument(
        "--keys",
        help="JSON file with the peer's keys and the merchant's (created if "
        "missing, so the peer keeps its identity across restarts)",
    )
    parser.add_argument("--json", action="store_true", help="print wiring as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.keys and Path(args.keys).exists():
        keys = Keys.from_file(args.keys)
    else:
        keys = Keys()
        if args.keys:
            Path(args.keys).write_text(json.dumps(keys.dump(), indent=1))
    peer = WeChatPeer(keys, host=args.host, port=args.port).start()
    wiring = {"base_url": peer.base_url, **keys.wiring()}
    if args.json:
        print(json.dumps(wiring), flush=True)
    else:
        print(f"WeChat Pay peer on {peer.base_url} (mchid {keys.mchid})", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_a: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    peer.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
