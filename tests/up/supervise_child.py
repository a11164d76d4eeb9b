"""A child process for the supervision tests: supervises N real Envoys (static bootstrap,
admin only) like `meshd up` does, prints their pids, replaces the first on SIGUSR1 (as a certificate
renewal does) and stops them on SIGTERM/SIGINT.

    python -m tests.up.supervise_child WORKDIR N
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from compiler.model.placement import Address
from reconciler.up.ports import LOCALHOST, free_port
from reconciler.up.proxies import ProxySpec, Supervisor, find_envoy


def _static(node_id: str, admin: Address) -> dict[str, object]:
    return {
        "node": {"id": node_id, "cluster": "test"},
        "admin": {"address": {"socket_address": {"address": admin.host, "port_value": admin.port}}},
    }


async def main(workdir: Path, count: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    supervisor = Supervisor(
        find_envoy(),
        workdir,
        report=lambda line: print("report:", line, flush=True),
        backoff_base=0.2,
        backoff_cap=0.5,
    )
    try:
        for index in range(count):
            admin = Address(LOCALHOST, free_port())
            node_id = f"test~v1~{index}"
            await supervisor.start(ProxySpec(node_id, "test", admin, _static(node_id, admin)))
        replace = asyncio.Event()
        loop.add_signal_handler(signal.SIGUSR1, replace.set)
        print("pids:", json.dumps({n: s.pid for n, s in supervisor.proxies.items()}), flush=True)
        while not stop.is_set():
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(replace.wait())]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for waiting in waits:
                waiting.cancel()
            if replace.is_set():
                replace.clear()
                await supervisor.replace("test~v1~0")
                print("replaced:", supervisor.proxies["test~v1~0"].pid, flush=True)
    finally:
        await supervisor.stop_all()
        print("stopped", flush=True)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
