"""Run the lab cloud service in the foreground: ``python -m portal.lab.cloud --data-dir ... --port ...``.

``portal.lab.cloud.server.start`` launches this in a detached session; run it by hand to watch
its log. ``--sync-runner`` / ``--onprem-runner`` name the callables that run a sync cycle and the
Exchange on-premises cmdlets, as ``package.module:function``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .server import DEFAULT_HOST, DEFAULT_INITIAL_DOMAIN, DEFAULT_PORT


def _load(reference: str | None) -> Callable[..., Any] | None:
    if not reference:
        return None
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise SystemExit(f"a runner is named as package.module:function, not {reference!r}")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise SystemExit(f"{reference} is not callable")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m portal.lab.cloud", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--tenant-id", required=True)
    parser.add_argument("--initial-domain", default=DEFAULT_INITIAL_DOMAIN)
    parser.add_argument("--certfile", type=Path, help="server certificate chain (PEM); plain HTTP without it")
    parser.add_argument("--keyfile", type=Path)
    parser.add_argument("--sync-runner")
    parser.add_argument("--onprem-runner")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)

    import uvicorn

    from .app import create_app

    app = create_app(
        data_dir=args.data_dir,
        tenant_id=args.tenant_id,
        initial_domain=args.initial_domain,
        sync_runner=_load(args.sync_runner),
        onprem_runner=_load(args.onprem_runner),
    )
    tls: dict[str, Any] = {}
    if args.certfile:
        tls = {"ssl_certfile": str(args.certfile), "ssl_keyfile": str(args.keyfile)}
    # Access logging stays off: query strings hold directory data, and the log is for failures.
    # A short graceful shutdown: clients keep idle connections open, and stop() should not wait on them.
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False,
                lifespan="off", timeout_graceful_shutdown=2, **tls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
