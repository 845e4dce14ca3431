"""The runtime data (database, secret key, backups, lab passwords) is readable by its owner only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(var_dir: Path, code: str, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SECRET_KEY")}
    setup = "import os, django; os.environ['DJANGO_SETTINGS_MODULE']='portal.settings'; django.setup(); "
    # The usual umask, which leaves new files readable by everyone.
    return subprocess.run([sys.executable, "-c", setup + code], cwd=ROOT, capture_output=True, text=True, check=True,
                          env={**base, "DIROPS_VAR_DIR": str(var_dir), **env},
                          preexec_fn=lambda: os.umask(0o022)).stdout.strip()


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_var_dir_and_database_are_created_private(tmp_path):
    var_dir = tmp_path / "var"
    _run(var_dir, "from django.db import connection; connection.cursor().execute('create table t (x int)')")
    assert _mode(var_dir) == 0o700
    assert _mode(var_dir / "portal.sqlite3") == 0o600
    assert _mode(var_dir / "secret_key") == 0o600
    wal = var_dir / "portal.sqlite3-wal"
    assert not wal.exists() or _mode(wal) == 0o600


def test_an_existing_open_var_dir_and_database_are_closed(tmp_path):
    var_dir = tmp_path / "var"
    var_dir.mkdir(mode=0o755)
    var_dir.chmod(0o755)
    db = var_dir / "portal.sqlite3"
    db.touch()
    db.chmod(0o644)
    _run(var_dir, "from django.db import connection; connection.ensure_connection()")
    assert _mode(var_dir) == 0o700
    assert _mode(db) == 0o600


def test_a_database_outside_var_is_kept_private_too(tmp_path):
    db = tmp_path / "elsewhere.sqlite3"
    db.touch()
    db.chmod(0o664)
    _run(tmp_path / "var", "from django.db import connection; connection.ensure_connection()",
         DATABASE_URL=f"sqlite:///{db}")
    assert _mode(db) == 0o600
