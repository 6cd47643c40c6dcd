"""Run a command against a throwaway PostgreSQL cluster: ``python tests/pg_cluster.py -- CMD ARGS...``.

Used by ``make test``: it starts a private cluster (initdb in a temp folder, 127.0.0.1 on a free port,
the unix socket inside the temp folder, no durability since nothing is kept), exports
``RBFT_TEST_PG_URL`` (an admin URL; the tests create one database per test from it) and
``RBFT_TEST_PG_REQUIRED=1`` (so the PostgreSQL variants fail instead of skipping), runs the command,
and stops and deletes the cluster afterwards, also when the command fails or is interrupted.

initdb refuses to run as root: as root the cluster runs as the ``postgres`` system user that Debian's
package creates (else ``nobody``), through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["find_bindir", "PgCluster"]


def find_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl`` (Debian keeps them out of PATH), newest version first."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    for folder in candidates:
        if os.access(Path(folder) / "initdb", os.X_OK):
            return Path(folder)
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PgCluster:
    """A private cluster in a temp folder; ``start()`` then ``stop()`` (idempotent)."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="rbft-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "postgres" if _has_user("postgres") else "nobody"
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.started = False

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://rbft@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=str(self.root))

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "rbft", "-A", "trust", "-E", "UTF8", "--locale=C",
                  "--no-sync")
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.root / "server.log"),
                  "-o", options)
        self.started = True

    def stop(self) -> None:
        try:
            if self.started:
                self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w")
                self.started = False
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def main(argv: list[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1:]
    if not argv:
        print("usage: python tests/pg_cluster.py -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    bindir = find_bindir()
    if bindir is None:
        print("error: PostgreSQL server binaries (initdb, pg_ctl) not found; install them with "
              "`apt-get install postgresql` (make test does this as root)", file=sys.stderr)
        return 2
    cluster = PgCluster(bindir)
    # a SIGTERM (CI timeout) must still stop the cluster
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        started = time.monotonic()
        try:
            cluster.start()
        except subprocess.CalledProcessError as exc:
            log = cluster.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            print(f"error: the throwaway PostgreSQL cluster did not start ({exc}); server log:\n{tail}",
                  file=sys.stderr)
            return 2
        print(f"PostgreSQL test cluster on 127.0.0.1:{cluster.port} (started in {time.monotonic() - started:.1f} s)",
              flush=True)
        env = dict(os.environ, RBFT_TEST_PG_URL=cluster.url, RBFT_TEST_PG_REQUIRED="1")
        return subprocess.call(argv, env=env)
    except KeyboardInterrupt:
        return 130
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
