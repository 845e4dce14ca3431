import json
import signal
import time

from django.core.management.base import BaseCommand, CommandError

from portal import stack


class Command(BaseCommand):
    help = ("Start, stop or inspect the local processes (Redis, RQ workers, web server; PostgreSQL when named) "
            "that make runs.")

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["up", "down", "status", "run"])
        parser.add_argument("services", nargs="*",
                            help="redis, workers, web (default: these three), postgres (only when named); "
                                 "`down` stops the named ones, or everything started")
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument("--bind", default="127.0.0.1:8000")
        parser.add_argument("--json", action="store_true", dest="as_json")

    def handle(self, *args, action, services, workers, bind, as_json: bool = False, **options):
        unknown = set(services) - {"redis", "workers", "web", "postgres"}
        if unknown:
            raise CommandError(f"Unknown service(s): {', '.join(sorted(unknown))}")
        try:
            chosen = self._select(services, workers=workers, bind=bind) if action in ("up", "run") else []
            if action in ("up", "run"):
                for service in chosen:
                    pid, started = stack.start(service)
                    self.stdout.write(f"{service.name}: {'started' if started else 'already running'} (pid {pid})")
            if action == "run":
                self._run(chosen, bind)
            elif action == "down":
                named = [s for s in stack.all_pidfile_services() if not services or self._named(s.name, services)]
                for name in stack.stop_all(named):
                    self.stdout.write(f"{name}: stopped")
            elif action == "status":
                state = {s.name: stack.running_pid(s) for s in stack.all_pidfile_services()}
                if as_json:
                    self.stdout.write(json.dumps(state))
                else:
                    for name, pid in state.items():
                        self.stdout.write(f"{name}: running (pid {pid})" if pid else f"{name}: stopped")
        except stack.StackError as exc:
            raise CommandError(str(exc)) from exc

    def _select(self, names, *, workers, bind):
        everything = stack.known_services(workers=workers, bind=bind)
        if not names:
            return everything
        chosen = [s for s in everything if self._named(s.name, names)]
        if "postgres" in names:
            chosen.insert(0, stack.postgres_service())
        return chosen

    @staticmethod
    def _named(name: str, names) -> bool:
        return name in names or ("workers" in names and name.startswith("worker"))

    def _run(self, services, bind):
        stopping = []
        # Both, explicitly: a shell that starts us in the background leaves SIGINT ignored.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopping.append(True))
        self.stdout.write(self.style.SUCCESS(f"\nDirOps Portal is ready at http://{bind}/  (Ctrl-C stops everything)"))
        try:
            while not stopping:
                for service in services:
                    if stack.running_pid(service) is None:
                        self.stderr.write(f"{service.name} stopped unexpectedly; see {service.logfile}:\n"
                                          + stack.tail(service.logfile))
                        stopping.append(True)
                        break
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            self.stdout.write("\nStopping…")
            for name in stack.stop_all(list(reversed(services))):
                self.stdout.write(f"{name}: stopped")
