"""Benchmark: reading every user of a tenant through Microsoft Graph, page by page.

Measures, against the lab cloud service (portal/lab/cloud, its own lab on 127.0.0.1:8460, env
BENCH_GRAPH_PORT, under var/bench/lab/cloud-graph) seeded with 100,000 users (env BENCH_GRAPH_USERS; seeded
once, reused while the count matches):
  - the EntraGraph connector's ``iter_users`` (the real msgraph-sdk: request builders, request adapter,
    middleware, PageIterator; answers read as JSON into EntraUser dataclasses; each next page requested on
    the connector's loop as soon as the page before it is parsed, while the caller converts), and
  - the baseline it names: raw paging with httpx (an msal token, then GET /v1.0/users with the same
    $select and $top=999, following the absolute @odata.nextLink, parsing JSON; one request after the
    other, no conversion to dataclasses);
users/s for both and their ratio, the Graph requests each made (pages; counted at the httpx transport,
so retries would show), and the peak memory of each run in a fresh process. Best of 2 runs each,
alternating.

Context: msgraph-sdk's generated models cost ~4-5 ms per object; the connector reads answers as JSON to
avoid that. The per-user overhead over raw printed below shows whether that worked. The lab server runs on
the same machine, so the client's CPU and the server's compete; wall times follow the machine's load.

Run with `make bench`.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

USERS = int(os.environ.get("BENCH_GRAPH_USERS", "100000"))
PORT = int(os.environ.get("BENCH_GRAPH_PORT", "8460"))  # another port where two benches share a machine
DATA_DIR = ROOT / "var" / "bench" / "lab" / "cloud-graph"
PAGE = 999
SELECT = ["id", "displayName", "userPrincipalName", "mail", "proxyAddresses", "onPremisesSyncEnabled",
          "accountEnabled", "department"]
DOMAIN = "contoso.com"
SCOPE = "https://graph.microsoft.com/.default"
SDK_MODEL_MS = (4.0, 5.0)  # what helpers measured per object for msgraph-sdk's generated models


def _count_requests() -> dict[str, int]:
    """Count Graph API requests (not token requests) at the httpx transports, sync and async."""
    import httpx

    counts = {"requests": 0}

    def is_graph(request: httpx.Request) -> bool:
        return request.url.path.startswith(("/v1.0/", "/beta/"))

    sync_send = httpx.HTTPTransport.handle_request
    async_send = httpx.AsyncHTTPTransport.handle_async_request

    def handle_request(self, request):  # noqa: ANN001, ANN202
        counts["requests"] += is_graph(request)
        return sync_send(self, request)

    async def handle_async_request(self, request):  # noqa: ANN001, ANN202
        counts["requests"] += is_graph(request)
        return await async_send(self, request)

    httpx.HTTPTransport.handle_request = handle_request
    httpx.AsyncHTTPTransport.handle_async_request = handle_async_request
    return counts


def measure(mode: str, lab: dict) -> dict:
    """One full read in this (fresh) process; returns its figures."""
    # imports before the clock starts (msgraph-sdk's take ~1 s); the clock covers set-up, token and paging
    import httpx
    import msal
    import requests

    from portal.connectors.graph import AppCredentials, EntraGraph, GraphSettings

    counts = _count_requests()
    started = time.perf_counter()
    users = 0
    if mode == "connector":
        credentials = AppCredentials(tenant_id=lab["tenant_id"], client_id=lab["client_id"],
                                     client_secret=lab["client_secret"], authority_host=lab["base_url"],
                                     ca_file=lab["ca_file"])
        settings = GraphSettings(credentials=credentials, graph_url=lab["graph_url"], beta_url=lab["beta_url"])
        with EntraGraph(settings) as graph:
            for _user in graph.iter_users(select=SELECT, page_size=PAGE):
                users += 1
    else:
        session = requests.Session()
        session.trust_env = False
        session.verify = lab["ca_file"]
        app = msal.ConfidentialClientApplication(lab["client_id"], client_credential=lab["client_secret"],
                                                 authority=lab["authority"], instance_discovery=False,
                                                 http_client=session)
        result = app.acquire_token_for_client(scopes=[SCOPE])
        if "access_token" not in result:
            raise SystemExit(f"no token: {result.get('error')} {result.get('error_description')}")
        headers = {"Authorization": f"Bearer {result['access_token']}"}
        with httpx.Client(verify=lab["ca_file"], trust_env=False, timeout=60.0) as client:
            url: str | None = f"{lab['graph_url']}/users"
            params: dict[str, str] | None = {"$select": ",".join(SELECT), "$top": str(PAGE)}
            while url:
                response = client.get(url, params=params, headers=headers)
                response.raise_for_status()
                body = response.json()
                users += len(body["value"])
                url, params = body.get("@odata.nextLink"), None
        session.close()
    seconds = time.perf_counter() - started
    return {"mode": mode, "users": users, "seconds": seconds, "requests": counts["requests"],
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _in_subprocess(mode: str, lab: dict) -> dict:
    # the lab's secret goes over stdin, not on the command line
    out = subprocess.run([sys.executable, __file__, "--measure", mode], input=json.dumps(lab), capture_output=True,
                         text=True, env=os.environ.copy())
    if out.returncode != 0:
        raise SystemExit(f"the {mode} run failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _seed() -> None:
    from portal.lab.cloud.store import CloudStore

    store = CloudStore.open(data_dir=DATA_DIR)
    try:
        have = store.count_objects(kind="user")
        if have > USERS:
            raise SystemExit(f"{DATA_DIR} holds {have:,} users, more than BENCH_GRAPH_USERS={USERS:,}; "
                             "remove that directory (with the lab stopped) to reseed")
        if have == USERS:
            return
        started = time.perf_counter()
        # users are numbered, so a partial seed (an interrupted run, or a smaller count before) is completed
        with store.transaction():
            for i in range(have, USERS):
                store.create_user(
                    user_principal_name=f"user{i:06d}@{DOMAIN}", display_name=f"User {i:06d}",
                    mail=f"user{i:06d}@{DOMAIN}",
                    proxy_addresses=[f"SMTP:user{i:06d}@{DOMAIN}", f"smtp:u{i}@contoso.onmicrosoft.com"],
                    on_premises_sync_enabled=i % 3 != 0, source_anchor=f"bench-anchor-{i}",
                    extra={"department": ("Sales", "Finance", "Engineering", "Support")[i % 4]},
                )
        print(f"  (seeded the lab with {USERS - have:,} users in {time.perf_counter() - started:.0f}s; "
              "later runs reuse it)")
    finally:
        store.close()


def prepare() -> tuple[dict, bool]:
    """Start the lab (unless it runs) and seed it; returns what the runs need and whether we started it."""
    from portal.lab.cloud import server

    was_running = server.status(data_dir=DATA_DIR).running
    status = server.ensure_up(data_dir=DATA_DIR, port=PORT)
    creds = server.lab_credentials(data_dir=DATA_DIR)
    _seed()
    lab = {"tenant_id": creds.tenant_id, "client_id": creds.client_id, "client_secret": creds.client_secret,
           "base_url": status.base_url, "authority": status.authority, "graph_url": status.graph_url,
           "beta_url": status.graph_beta_url, "ca_file": str(status.ca_file)}
    return lab, not was_running


def main() -> None:
    from portal.lab.cloud import server

    lab, started_lab = prepare()
    try:
        runs = {"raw": [], "connector": []}
        for _ in range(2):  # alternate, keep the best of each: the machine's noise hits both alike
            for mode in ("raw", "connector"):
                runs[mode].append(_in_subprocess(mode, lab))
    finally:
        if started_lab:
            server.stop(data_dir=DATA_DIR)
    best = {mode: min(rs, key=lambda r: r["seconds"]) for mode, rs in runs.items()}
    raw, conn = best["raw"], best["connector"]
    if raw["users"] != conn["users"] or raw["users"] < USERS:
        raise SystemExit(f"user counts differ or fall short: raw {raw['users']}, connector {conn['users']}")
    raw_rate, conn_rate = raw["users"] / raw["seconds"], conn["users"] / conn["seconds"]
    ratio = conn_rate / raw_rate
    overhead_us = (conn["seconds"] - raw["seconds"]) / conn["users"] * 1e6
    print(f"Graph paging: {conn['users']:,} users, {len(SELECT)} properties, $top={PAGE}, lab cloud over HTTPS "
          f"(best of 2 each)")
    print(f"  raw httpx paging (baseline): {raw_rate:,.0f} users/s ({raw['seconds']:.1f}s), "
          f"{raw['requests']} Graph requests, peak {raw['peak_mb']:.0f} MB")
    print(f"  EntraGraph connector:        {conn_rate:,.0f} users/s ({conn['seconds']:.1f}s), "
          f"{conn['requests']} Graph requests, peak {conn['peak_mb']:.0f} MB")
    print(f"  ratio connector/raw: {ratio:.2f} in users/s; {conn['peak_mb'] / raw['peak_mb']:.2f} in peak memory")
    print(f"  connector overhead over raw: {overhead_us:,.0f} us per user "
          f"(msgraph-sdk models would add ~{SDK_MODEL_MS[0] * 1000:,.0f}-{SDK_MODEL_MS[1] * 1000:,.0f} us per user)")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--measure":
        print(json.dumps(measure(sys.argv[2], json.loads(sys.stdin.read()))))
    else:
        main()
