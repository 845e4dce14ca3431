"""`manage.py lab ad up|down|status|reset` and `manage.py lab seed`: the rehearsal lab by hand."""

import json
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from portal.lab import config, samba
from portal.lab.cloud import server as cloud_server


class Command(BaseCommand):
    help = "Run the rehearsal lab: its Active Directory (Samba AD DC on loopback) and the scenario seed."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="part", required=True)
        ad = sub.add_parser("ad", help="the lab's Samba AD DC")
        ad.add_argument("action", choices=["up", "down", "status", "reset"])
        ad.add_argument("--json", action="store_true", dest="as_json")
        cloud = sub.add_parser("cloud", help="the lab's stand-in for the Microsoft cloud (HTTPS on loopback)")
        cloud.add_argument("action", choices=["up", "down", "status"])
        cloud.add_argument("--json", action="store_true", dest="as_json")
        sync = sub.add_parser("sync", help="run a sync cycle through the Entra Connect connector")
        sync.add_argument("--policy", choices=["Delta", "Initial"], default="Delta")
        sync.add_argument("--loop", action="store_true",
                          help="be the sync server's scheduler: start a cycle whenever one is due")
        sync.add_argument("--set-version", metavar="BUILD", default=None,
                          help="set the Entra Connect build the lab server reports (e.g. 2.4.131.0 rehearses a client "
                               "too old for in-place conversions) and run no cycle")
        seed = sub.add_parser("seed", help="fill the lab AD with the field notes' scenarios")
        seed.add_argument("--users", type=int, default=settings.LAB_SEED_USERS)
        seed.add_argument("--seed", type=int, default=1)
        seed.add_argument("--reset", action="store_true", help="delete the seeded OUs first")
        seed.add_argument("--json", action="store_true", dest="as_json")

    def handle(self, *args, part, **options):
        try:
            if part == "ad":
                self._ad(options["action"], options["as_json"])
            elif part == "cloud":
                self._cloud(options["action"], options["as_json"])
            elif part == "sync" and options.get("set_version"):
                self._set_connect_version(options["set_version"])
            elif part == "sync":
                self._sync(policy=options["policy"], loop=options["loop"])
            else:
                self._seed(users=options["users"], seed=options["seed"], reset=options["reset"],
                           as_json=options["as_json"])
        except (samba.LabError, cloud_server.CloudLabError) as exc:
            raise CommandError(str(exc)) from exc

    def _set_connect_version(self, version: str) -> None:
        from portal.lab.cloud.store import CloudStore

        store = CloudStore.open(data_dir=config.cloud_dir())
        try:
            store.set_connect_version(version=version)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            store.close()
        self.stdout.write(f"Entra Connect now reports build {version} (Get-ADSyncGlobalSettings).")

    def _ad(self, action: str, as_json: bool) -> None:
        kwargs = {"base_dir": config.ad_dir()}
        started = time.monotonic()
        if action == "up":
            status = samba.ensure_up(admin_password=config.ad_admin_password(create=True), realm=settings.LAB_AD_REALM,
                                     host=settings.LAB_AD_HOST, **kwargs)
        elif action == "reset":
            status = samba.reset(admin_password=config.ad_admin_password(create=True), realm=settings.LAB_AD_REALM,
                                 host=settings.LAB_AD_HOST, **kwargs)
        elif action == "down":
            status = samba.stop(**kwargs)
        else:
            status = samba.status(**kwargs)
        if as_json:
            self.stdout.write(json.dumps({"running": status.running, "provisioned": status.provisioned,
                                          "pid": status.pid, "url": status.ldap_url, "base_dn": status.base_dn}))
            return
        state = "running" if status.running else ("stopped" if status.provisioned else "not provisioned")
        self.stdout.write(f"lab AD: {state}" + (f" at {status.ldap_url} (pid {status.pid}), base {status.base_dn}"
                                                 if status.running else "")
                          + (f" [{time.monotonic() - started:.1f}s]" if action != "status" else ""))

    def _cloud(self, action: str, as_json: bool) -> None:
        kwargs = {"data_dir": config.cloud_dir()}
        if action == "up":
            config.write_sync_options()
            status = cloud_server.ensure_up(port=settings.LAB_CLOUD_PORT, **config.cloud_hooks(), **kwargs)
        elif action == "down":
            status = cloud_server.stop(**kwargs)
        else:
            status = cloud_server.status(**kwargs)
        url = f"https://{status.host}:{status.port}"
        if as_json:
            self.stdout.write(json.dumps({"running": status.running, "pid": status.pid, "url": url,
                                          "tenant_id": status.tenant_id, "ca_file": str(status.ca_file or "")}))
            return
        if status.running:
            self.stdout.write(f"lab cloud: running at {url} (pid {status.pid}), tenant {status.tenant_id}")
        else:
            self.stdout.write("lab cloud: stopped")

    def _sync(self, *, policy: str, loop: bool) -> None:
        from portal.connectors.registry import entra_connect
        from portal.connectors.sync import SyncCycleNotStarted, SyncError, start_sync_cycle_when_idle
        from portal.lab import sync as engine
        from portal.lab.cloud.store import CloudStore
        from portal.lab.jobs import POLL_SECONDS, WAIT_SECONDS

        def cycle(which: str, *, attempts: int) -> None:
            started = time.monotonic()
            with entra_connect() as connector:
                start_sync_cycle_when_idle(connector, policy=which, attempts=attempts, wait_timeout=WAIT_SECONDS,
                                           poll=POLL_SECONDS, log=lambda level, message: self.stdout.write(message))
                connector.wait_until_idle(timeout=WAIT_SECONDS, poll=POLL_SECONDS)
                runs = connector.run_history(count=1)
            result = runs[0].result if runs else "unknown"
            self.stdout.write(f"{which} sync cycle: {result} in {time.monotonic() - started:.1f}s")

        if not loop:
            try:
                cycle(policy, attempts=2)
            except SyncError as exc:
                raise CommandError(str(exc)) from exc
            return
        self.stdout.write("lab sync scheduler: a cycle whenever the sync server's interval says one is due")
        while True:
            store = CloudStore.open(data_dir=config.cloud_dir())
            try:
                due, which = engine.due(store), engine.next_policy(store)
            finally:
                store.close()
            if due:
                try:
                    # one attempt: a cycle already running is the one that was due, as on a real scheduler
                    cycle(which, attempts=1)
                except SyncCycleNotStarted as exc:
                    self.stdout.write(f"skipped: {exc}")
            time.sleep(5)

    def _seed(self, *, users: int, seed: int, reset: bool, as_json: bool) -> None:
        started = time.monotonic()
        last = [0.0]

        def progress(phase: str, done: int, total: int) -> None:
            if not as_json and (time.monotonic() - last[0] > 2 or done == total):
                last[0] = time.monotonic()
                self.stdout.write(f"  {phase}: {done}/{total}")

        manifest = config.ensure_seeded(
            users=users, seed=seed, reset=reset, progress=progress,
            on_rebuild=lambda why: self.stdout.write(f"  rebuilding the lab's seed: {why}"))
        config.seed_manifest_file().write_text(manifest.to_json())
        if not as_json:
            self.stdout.write("  cloud side: first sync, licences, MFA states, cloud-only groups…")
        cloud_manifest = config.ensure_cloud_seeded(manifest=manifest, seed=seed)
        (config.cloud_dir() / "cloud-seed-manifest.json").write_text(cloud_manifest.to_json())
        if as_json:
            self.stdout.write(manifest.to_json())
        else:
            self.stdout.write(f"lab seed (users={users}, seed={seed}) ready in {time.monotonic() - started:.1f}s; "
                              f"manifest in {config.seed_manifest_file()}")
            self.stdout.write("Sign in with Microsoft (lab users; kept in "
                              f"{config.sign_in_accounts_file()}):")
            for label, account in config.sign_in_accounts().items():
                self.stdout.write(f"  {account['upn']:<40} {account['password']:<22} {label}")
