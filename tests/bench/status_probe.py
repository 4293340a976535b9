"""The status client of make bench-cluster's side-by-side check, in a process of its own.

`python tests/bench/status_probe.py TOKEN INTERVAL PORT...`: GET /v1/autonomy/status on each
127.0.0.1:PORT in turn (the order turned round each time, so neither always goes first), then
sleep INTERVAL, until its stdin closes; then one JSON line on stdout: {"latencies": [[[at, seconds],
...] per port], "timeouts": n, "refused": "..." or null}, `at` in seconds since the probe began.

Its own process so that nothing else (cluster_scale.py's RSS sampler, its API calls) holds this
interpreter's GIL while an answer is on its way: the latencies are the servers', not the bench's.
"""

from __future__ import annotations

import http.client
import json
import select
import sys
import time


def main(token: str, interval: float, ports: list[int]) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for port in ports]
    latencies: list[list[tuple[float, float]]] = [[] for _ in ports]
    timeouts = 0
    start = time.perf_counter()
    order = list(zip(connections, latencies, strict=True))
    while not select.select([sys.stdin], [], [], 0)[0]:
        order.reverse()
        for connection, measured in order:
            began = time.perf_counter()
            try:
                connection.request("GET", "/v1/autonomy/status", headers=headers)
                answer = connection.getresponse()
                answer.read()
            except TimeoutError:  # a stall of 10 s or more: counted as it lasted, then on with a new connection
                connection.close()
                timeouts += 1
            except (OSError, http.client.HTTPException) as exc:  # the server went away: say so, not a traceback
                refused = f"failed: {type(exc).__name__}: {exc}"
                return {"latencies": latencies, "timeouts": timeouts, "refused": refused}
            else:
                if answer.status != 200:
                    return {"latencies": latencies, "timeouts": timeouts, "refused": f"answered {answer.status}"}
            measured.append((began - start, time.perf_counter() - began))
        time.sleep(interval)
    return {"latencies": latencies, "timeouts": timeouts, "refused": None}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], float(sys.argv[2]), [int(port) for port in sys.argv[3:]])), flush=True)
