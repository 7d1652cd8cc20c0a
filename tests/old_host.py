"""An old host's data as a team of the Python 2 years mounts it (issue 20), for
the end-to-end test and the start-up benchmark: made the honest way (old_trac.py
undoes Trac's own upgrade scripts; the branch by `brz init --format=pack-0.92`;
the users file by Apache's `htpasswd -m` in the image).

Five projects: a Trac 1.0 from Windows that logs to a log/ never copied, with a
git repository and AccountManager; a Trac 1.0 with a repeated option; a Trac
1.2 with XML-RPC and a repeated section; a Trac 0.12 served by TracBzr with a
Python 2 egg; and one whose trac.ini no Trac could read.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from old_trac import (
    add_python2_egg,
    enable_missing_plugins,
    log_to_missing_file,
    make_old_environment,
    make_tracbzr,
    repeat_option,
    repeat_section,
    windows_paths,
)
from stack import run

WWW_DATA = 33
OLD_USER = ("olduser", "old host secret")


def chown_tree(root: Path, uid: int) -> None:
    for directory, subdirs, files in os.walk(root):
        for entry in [directory, *(os.path.join(directory, n) for n in subdirs + files)]:
            os.lchown(entry, uid, uid)


def host_brz(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(
        [str(Path(sys.executable).with_name("brz")), *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        env={**os.environ, "BRZ_EMAIL": "Old Host <old@example.org>", "BRZ_LOG": os.devnull},
    )


def old_host(image: str, base: Path) -> tuple[Path, Path]:
    """The Trac folder and the Bazaar tree as the old host left them."""
    trac_dir, bzr_dir = base / "trac", base / "bzr"
    branch = bzr_dir / "arduino" / "trunk"
    host_brz("init", "--format=pack-0.92", "--create-prefix", str(branch))
    (branch / "README").write_text("blink\n")
    host_brz("add", cwd=branch)
    host_brz("commit", "-m", "from the old host", cwd=branch)
    arduino, svn, rpc, tracbzr = (trac_dir / n for n in ("arduino", "svn", "rpc", "tracbzr"))
    make_old_environment(arduino, "Projetos Arduino", version=29)
    windows_paths(arduino)
    enable_missing_plugins(arduino)
    log_to_missing_file(arduino)
    # Edited by hand on the Windows host in Notepad, which saved it in Windows-1252.
    conf = arduino / "conf" / "trac.ini"
    conf.write_bytes(
        conf.read_text(encoding="utf-8").replace("Arduino", "Arduíno").encode("cp1252")
    )
    make_old_environment(svn, "Old Subversion", version=29)
    repeat_option(svn)
    make_old_environment(rpc, "With XML-RPC", version=41)
    enable_missing_plugins(rpc)
    repeat_section(rpc)
    make_old_environment(tracbzr, "Served by TracBzr", version=26)
    make_tracbzr(tracbzr, "/srv/bzr/arduino/trunk")
    add_python2_egg(tracbzr)
    garbled = trac_dir / "garbled"
    make_old_environment(garbled, "Garbled", version=41)
    with open(garbled / "conf" / "trac.ini", "a", encoding="utf-8") as ini:
        ini.write("\nthis line is no option\n")
    line = run(["docker", "run", "--rm", "--entrypoint", "htpasswd", image, "-nbm", *OLD_USER])
    (trac_dir / ".htpasswd").write_text(line.stdout.strip() + "\n")
    assert line.stdout.startswith("olduser:$apr1$")
    chown_tree(trac_dir, WWW_DATA)
    chown_tree(bzr_dir, WWW_DATA)
    return trac_dir, bzr_dir
