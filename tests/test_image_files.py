"""The files that go into the image agree with the paths the code declares.

rootfs/ mirrors where its files land; supervisord.conf and the Dockerfile
name a few run-time paths that trac_breezy/container/paths.py declares, and
this keeps them from drifting apart.
"""

from __future__ import annotations

import re
from pathlib import Path

from trac_breezy.container import paths

ROOT = Path(__file__).resolve().parent.parent
SUPERVISORD_CONF = ROOT / "rootfs" / paths.SUPERVISORD_CONF.relative_to("/")


def test_supervisord_conf_is_where_the_entrypoint_looks():
    assert SUPERVISORD_CONF.is_file()


def test_supervisord_conf_expands_only_what_the_entrypoint_sets():
    used = set(re.findall(r"%\(ENV_([A-Z_]+)\)s", SUPERVISORD_CONF.read_text()))
    assert used == set(paths.supervisor_environment())
    assert str(paths.RUN_DIR) not in SUPERVISORD_CONF.read_text()
    # supervisord runs as the servers' user: only their own directory.
    assert paths.supervisor_environment()["TRAC_BREEZY_SERVER_RUN_DIR"] == str(paths.SERVER_RUN_DIR)


def test_supervisord_conf_names_modules_that_exist():
    for module in re.findall(r"-m (trac_breezy[\w.]+)", SUPERVISORD_CONF.read_text()):
        assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), module


def test_the_entrypoint_script_runs_the_entrypoint_module():
    script = (ROOT / "rootfs" / "usr" / "local" / "bin" / "docker-entrypoint").read_text()
    (module,) = re.findall(r"-m (trac_breezy[\w.]+)", script)
    assert (ROOT / (module.replace(".", "/") + ".py")).is_file()


def test_dockerfile_pgpassfile_is_the_one_the_code_writes():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"PGPASSFILE={paths.PGPASS_FILE}" in dockerfile
    # supervisorctl in `docker exec` expands supervisord.conf with these too.
    for name, value in paths.supervisor_environment().items():
        assert f"{name}={value}" in dockerfile
    assert str(paths.RUN_DIR) in dockerfile  # made at build time, writable by any PUID


def test_compose_passes_every_setting_to_the_container():
    import yaml

    from trac_breezy.container import settings

    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    passed = set(compose["services"]["web"]["environment"])
    expected = {s.name for s in settings.SETTINGS}
    expected |= {s.name + "_FILE" for s in settings.SETTINGS if s.secret}
    assert passed == expected
