"""A real oslo.messaging notification listener for longshore's interoperability test.

Usage: notifier_listener.py TRANSPORT_URL EXCHANGE TOPIC EXPECTED TIMEOUT_S

Listens on EXCHANGE / TOPIC exactly as Ceilometer's notification agent does
(get_notification_listener, an endpoint with a `sample` method), prints READY once
started, then one JSON line per received notification, and exits 0 after EXPECTED
notifications (3 on timeout).
"""
import json
import sys
import threading
import warnings

warnings.filterwarnings("ignore")

import oslo_messaging  # noqa: E402
from oslo_config import cfg  # noqa: E402


def main():
    url, exchange, topic = sys.argv[1], sys.argv[2], sys.argv[3]
    expected, timeout = int(sys.argv[4]), float(sys.argv[5])
    conf = cfg.ConfigOpts()
    conf([], project="longshore-interop", default_config_files=[], default_config_dirs=[])
    transport = oslo_messaging.get_notification_transport(conf, url=url)
    targets = [oslo_messaging.Target(exchange=exchange, topic=topic)]
    count = [0]
    done = threading.Event()
    lock = threading.Lock()

    class Endpoint:
        def sample(self, ctxt, publisher_id, event_type, payload, metadata):
            with lock:
                print(json.dumps({
                    "ctxt": ctxt,
                    "publisher_id": publisher_id,
                    "event_type": event_type,
                    "payload": payload,
                    "metadata": metadata,
                }, default=str), flush=True)
                count[0] += 1
                if count[0] >= expected:
                    done.set()

    listener = oslo_messaging.get_notification_listener(
        transport, targets, [Endpoint()], executor="threading")
    listener.start()
    print("READY", flush=True)
    ok = done.wait(timeout)
    listener.stop()
    listener.wait()
    transport.cleanup()
    sys.exit(0 if ok else 3)


if __name__ == "__main__":
    main()
