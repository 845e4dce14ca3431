"""The PostgreSQL server `manage.py stack up postgres` runs for the tests marked `postgres`."""

import os
import signal
from types import SimpleNamespace

import pytest

from portal import stack


def test_endpoint_comes_from_postgres_url_and_stays_on_loopback(settings):
    settings.STACK_POSTGRES_URL = "postgres://portal:s%40cret@127.0.0.1:5999/portal_db"
    assert stack.postgres_endpoint() == stack.PostgresEndpoint(host="127.0.0.1", port=5999, user="portal",
                                                               password="s@cret", name="portal_db")
    settings.STACK_POSTGRES_URL = "postgres://portal@db.example.com:5432/portal"
    with pytest.raises(stack.StackError, match="loopback only"):
        stack.postgres_endpoint()


def test_server_runs_as_the_postgres_user_when_started_by_root(settings, monkeypatch):
    settings.STACK_POSTGRES_URL = "postgres://dirops@127.0.0.1:5998/dirops"
    monkeypatch.setattr(stack, "postgres_bin", lambda program: f"/usr/lib/postgresql/15/bin/{program}")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    argv = stack.postgres_service().argv
    # setpriv execs the server itself, so the pid file names the postmaster.
    assert argv[:3] == ["setpriv", "--reuid=postgres", "--regid=postgres"]
    server = argv[argv.index("/usr/lib/postgresql/15/bin/postgres"):]
    # Where the cluster lives depends on whether the postgres user can enter var/ (mode 700: it cannot);
    # test_cluster_moves_to_the_postgres_users_home_when_it_cannot_enter_the_var_dir covers that choice.
    assert server[server.index("-D") + 1] == str(stack.postgres_data_dir())
    assert server[server.index("-p") + 1] == "5998"
    assert "listen_addresses=127.0.0.1" in server and "unix_socket_directories=" in server
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert stack.postgres_service().argv[0] == "/usr/lib/postgresql/15/bin/postgres"


def test_down_stops_postgres_after_its_clients_with_a_fast_shutdown(tmp_path, monkeypatch):
    monkeypatch.setattr(stack, "RUN_DIR", tmp_path)
    for name in ("postgres", "redis", "worker1", "web"):
        (tmp_path / f"{name}.pid").write_text("1")
    services = stack.all_pidfile_services()
    assert [s.name for s in services][:2] == ["web", "worker1"]
    [postgres] = [s for s in services if s.name == "postgres"]
    # The postmaster alone: signalling its helpers from outside would look like a crash to it.
    assert postgres.stop_signal == signal.SIGINT and not postgres.stop_group


@pytest.mark.postgres
@pytest.mark.django_db
def test_marked_tests_run_on_the_database_database_url_names():
    from django.db import connection

    on_postgres = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
    assert connection.vendor == ("postgresql" if on_postgres else "sqlite")


def test_cluster_moves_to_the_postgres_users_home_when_it_cannot_enter_the_var_dir(settings, monkeypatch, tmp_path):
    # A checkout under /root (mode 700): the postgres user could not reach var/postgres/data there.
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(stack.pwd, "getpwnam", lambda name: SimpleNamespace(pw_dir=str(tmp_path)))
    monkeypatch.setattr(stack, "_postgres_user_can_reach", lambda path: True)
    assert stack.postgres_data_dir() == settings.VAR_DIR / "postgres" / "data"
    monkeypatch.setattr(stack, "_postgres_user_can_reach", lambda path: False)
    elsewhere = stack.postgres_data_dir()
    assert elsewhere.parent.parent == tmp_path / "dirops" and elsewhere.name == "data"
    settings.VAR_DIR = settings.VAR_DIR / "other"
    assert stack.postgres_data_dir() != elsewhere, "one cluster per var dir"
