"""A throw-away PostgreSQL server for the tests, from Debian's postgresql binaries.

    python -m tests.postgres start DIR    # prints the database URL
    python -m tests.postgres stop DIR

``.ci/run`` starts one and exports its URL as GLASS_TEST_POSTGRES_URL; without that variable
the tests start their own when the binaries are installed (``find_bindir``). The server
trusts local connections, listens on 127.0.0.1 on a free port and on a socket in DIR, skips
fsync (nothing in it outlives the run) and holds one database, ``glass``. As root it runs as
the ``postgres`` user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
from pathlib import Path

DATABASE = "glass"
URL_FILE = "url"


def find_bindir() -> Path | None:
    """The newest /usr/lib/postgresql/N/bin with initdb (Debian's layout), else initdb on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name)
                   if Path(p).parent.parent.name.isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def start(root: str | os.PathLike) -> str:
    """Create and start a server under ``root`` (an empty or absent folder); its URL."""
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("no PostgreSQL server binaries (apt-get install postgresql)")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:  # the server user must own its folder and reach it
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        os.chmod(root, 0o700)
    data, log, port = root / "data", root / "server.log", _free_port()
    run = lambda argv: subprocess.run(_as_server_user(argv), check=True, capture_output=True, text=True, timeout=120)
    run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"])
    run([str(bindir / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "postgres", "-q",
         "-c", f"CREATE DATABASE {DATABASE}"])
    url = f"postgresql://postgres@127.0.0.1:{port}/{DATABASE}"
    (root / URL_FILE).write_text(url + "\n")
    return url


def stop(root: str | os.PathLike) -> None:
    bindir = find_bindir()
    data = Path(root) / "data"
    if bindir is not None and data.is_dir():
        subprocess.run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
                       capture_output=True, timeout=60)


if __name__ == "__main__":
    command, folder = sys.argv[1:3]
    if command == "start":
        print(start(folder))
    elif command == "stop":
        stop(folder)
    else:
        sys.exit(f"usage: python -m tests.postgres start|stop DIR (not {command!r})")
