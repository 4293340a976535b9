"""One scheduler tick, counting its HTTP requests: `python tests/bench/tick_probe.py [scheduler args]`.

For make bench-cluster (tests/bench/cluster_scale.py): runs leviathan_scheduler.cli.main in this
process with urllib3's connection pools counting each request, and writes
`bench-requests N` as the last line on stderr. Nothing else changes: the tick is the real one.
"""

from __future__ import annotations

import atexit
import sys

from urllib3 import connectionpool

count = 0
urlopen = connectionpool.HTTPConnectionPool.urlopen


def counted(self, *args, **kwargs):  # type: ignore[no-untyped-def]
    global count
    count += 1
    return urlopen(self, *args, **kwargs)


connectionpool.HTTPConnectionPool.urlopen = counted  # type: ignore[method-assign]
atexit.register(lambda: print(f"bench-requests {count}", file=sys.stderr, flush=True))

from leviathan_scheduler.cli import main  # noqa: E402

sys.exit(main())
