"""The embedded PostgreSQL server: reachable by the project's URL and by no other local user, whatever the length of
``FAIRNESS_HOME``; the user's directories keep their permissions; a server killed with ``kill -9`` restarts at once.

These start real servers (about a second each) and are marked slow.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psutil
import psycopg2
import pytest

from fairness_pipeline.store import connection, embedded

pytestmark = pytest.mark.slow
AS_ROOT = os.geteuid() == 0


def _modes(path: Path) -> dict[Path, int]:
    return {p: stat.S_IMODE(p.stat().st_mode) for p in (path, *path.parents)}


@pytest.fixture
def base() -> Iterator[Path]:
    """A directory the server's user can traverse but not list (0711), as a user's directory might be."""
    directory = Path(tempfile.mkdtemp(prefix="fpt-"))
    directory.chmod(0o711)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def home(base: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """Set FAIRNESS_HOME (under ``base``) for a test; the server started there is stopped before ``base`` goes."""
    monkeypatch.delenv("FAIRNESS_DATABASE_URL", raising=False)
    connection.database_url.cache_clear()

    def use(name: str) -> Path:
        monkeypatch.setenv("FAIRNESS_HOME", str(base / name))
        return base / name

    yield use
    embedded.stop()
    connection.database_url.cache_clear()


def _socket_dir(url: str) -> Path:
    return Path(parse_qs(urlsplit(url).query)["host"][0])


def _server_uid() -> int:
    import pwd

    return pwd.getpwnam(embedded.ROOT_SERVER_USER).pw_uid if AS_ROOT else os.geteuid()


def _query(url: str, statement: str) -> list[tuple]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            return cur.fetchall()
    finally:
        conn.close()


def _connects_as(user: str, url: str) -> bool:
    """Whether another OS user can open a connection with the URL (in a forked child that drops to that user)."""
    import pwd

    entry = pwd.getpwnam(user)
    pid = os.fork()
    if pid == 0:  # child: become the other user, try, report through the exit code
        code = 3
        try:
            os.setgroups([])
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
            psycopg2.connect(url, connect_timeout=5).close()
            code = 0
        except psycopg2.OperationalError:
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    exit_code = os.waitstatus_to_exitcode(status)
    assert exit_code in (0, 1), f"the child failed before connecting (exit code {exit_code})"
    return exit_code == 0


def test_long_home_puts_the_socket_in_a_private_directory(base: Path, home) -> None:
    fairness_home = home("h" * 97)
    pgdata = fairness_home / "pgdata"
    assert len(str(pgdata / ".s.PGSQL.5432")) > embedded.SOCKET_PATH_MAX  # too long for a socket address
    before = _modes(base)

    url = embedded.start()

    socket_dir = _socket_dir(url)
    assert socket_dir != pgdata and socket_dir.name.startswith("fp-")
    info = socket_dir.lstat()
    assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == _server_uid()
    assert _query(url, "SELECT current_database(), current_user") == [("fairness", "postgres")]
    assert _query(url, "SHOW listen_addresses") == [("",)]
    rules = _query(url, "SELECT type, database, user_name, auth_method, options FROM pg_hba_file_rules")
    assert rules == [("local", ["all"], ["all"], "peer", ["map=fairness"])]
    # Every socket the postmaster listens on is in a directory only the server's user can enter.
    postmaster = psutil.Process(embedded.status().pid)
    sockets = [c.laddr for c in postmaster.net_connections(kind="unix") if c.laddr]
    assert sockets == [str(socket_dir / ".s.PGSQL.5432")]
    assert all(stat.S_IMODE(Path(s).parent.stat().st_mode) == 0o700 for s in sockets)
    assert not postmaster.net_connections(kind="inet")
    assert _modes(base) == before  # no parent directory was widened
    if AS_ROOT:
        assert not _connects_as("nobody", url)

    assert embedded.stop()
    assert not socket_dir.exists()  # the private socket directory goes with the server


def test_short_home_keeps_the_socket_in_the_data_directory(base: Path, home) -> None:
    pgdata = home("home") / "pgdata"
    before = _modes(base)
    url = embedded.start()
    assert _socket_dir(url) == pgdata
    assert stat.S_IMODE(pgdata.stat().st_mode) == 0o700
    assert _query(url, "SELECT 1") == [(1,)]
    assert _modes(base) == before
    if AS_ROOT:
        assert not _connects_as("nobody", url)


def test_settings_on_disk_cannot_open_the_server(base: Path) -> None:
    """ALTER SYSTEM and an edited pg_hba.conf do not bring back TCP, a shared socket directory or trust."""
    pgdata = base / "pgdata"
    try:
        conn = psycopg2.connect(embedded.start(pgdata))
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("ALTER SYSTEM SET listen_addresses = '*'")
            cur.execute("ALTER SYSTEM SET unix_socket_directories = '/tmp'")
        conn.close()
        (pgdata / "pg_hba.conf").write_text("local all all trust\nhost all all 0.0.0.0/0 trust\n")
        embedded.stop(pgdata)

        url = embedded.start(pgdata)

        assert _query(url, "SHOW listen_addresses") == [("",)]
        assert _query(url, "SHOW unix_socket_directories") == [(f'"{pgdata}"',)]
        assert _query(url, "SELECT type, auth_method FROM pg_hba_file_rules") == [("local", "peer")]
    finally:
        embedded.stop(pgdata)


@pytest.mark.parametrize("where", ["pgdata", "h" * 97 + "/pgdata"], ids=["socket in pgdata", "private socket dir"])
def test_restart_right_after_kill_9(base: Path, where: str) -> None:
    """On a data directory given explicitly (as a test fixture would), not through FAIRNESS_HOME."""
    pgdata = base / where
    pgdata.parent.mkdir(exist_ok=True)
    try:
        embedded.start(pgdata)
        old_pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        os.kill(old_pid, signal.SIGKILL)
        began = time.monotonic()

        url = embedded.start(pgdata)  # at once: the old postmaster is a zombie or gone, its children still exiting

        elapsed = time.monotonic() - began
        assert int((pgdata / "postmaster.pid").read_text().split()[0]) != old_pid
        assert _query(url, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'") == [(1,)]
        assert elapsed < embedded.CRASH_GRACE_SECONDS
    finally:
        embedded.stop(pgdata)
    assert not (pgdata / "postmaster.pid").exists()


@pytest.mark.skipif(not AS_ROOT, reason="only root starts the server as another user")
def test_refuses_a_home_the_server_user_cannot_reach(monkeypatch: pytest.MonkeyPatch) -> None:
    private = Path(tempfile.mkdtemp(prefix="fpt-"))  # mode 0700, as /root is
    monkeypatch.setenv("FAIRNESS_HOME", str(private / "home"))
    try:
        with pytest.raises(embedded.EmbeddedServerError, match=r"cannot enter .*\(mode 0700\).*FAIRNESS_HOME"):
            embedded.start()
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        assert not (private / "home" / "pgdata").exists()
    finally:
        shutil.rmtree(private, ignore_errors=True)
