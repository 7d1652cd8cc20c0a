"""Creating Trac projects (admin command and TRAC_PROJECTS), with a real Trac."""

from __future__ import annotations

import pytest
from trac.env import Environment
from trac.perm import PermissionSystem

from trac_breezy.admin import projects
from trac_breezy.admin.trac_env import list_projects
from trac_breezy.container import settings


def values(tmp_path, **extra):
    return settings.load({"TRAC_ENV_PARENT_DIR": str(tmp_path), **extra})


def test_new_project_is_set_up_for_this_container(tmp_path):
    v = values(
        tmp_path, ADMIN_USER="admin", ADMIN_PASSWORD="pw", TRAC_BASE_URL="https://example.org/trac"
    )
    assert projects.create(v, "code", "Code Project") is True
    env = Environment(str(tmp_path / "code"))
    assert env.project_name == "Code Project"
    assert env.config.get("logging", "log_type") == "stderr"
    assert env.config.get("components", "trac_breezy.*") == "enabled"
    assert env.config.get("header_logo", "src") == ""
    assert env.config.get("trac", "base_url") == "https://example.org/trac/code"
    assert "TRAC_ADMIN" in PermissionSystem(env).get_user_permissions("admin")
    assert "TRAC_ADMIN" not in PermissionSystem(env).get_user_permissions("someone")
    env.shutdown()
    assert list_projects(tmp_path) == ["code"]


def test_existing_project_is_left_alone(tmp_path):
    v = values(tmp_path)
    projects.create(v, "code")
    ini = tmp_path / "code" / "conf" / "trac.ini"
    ini.write_text(ini.read_text() + "\n[custom]\nkeep = me\n")
    assert projects.create(v, "code") is False
    assert "keep = me" in ini.read_text()


def test_setting_creates_the_missing_ones(tmp_path, capsys):
    projects.create(values(tmp_path), "old")
    projects.create_from_setting(values(tmp_path, TRAC_PROJECTS="old, new"))
    assert list_projects(tmp_path) == ["new", "old"]
    assert "created Trac project new" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["-x", "a/b", "..", "a b", ""])
def test_bad_names_are_refused(tmp_path, name):
    with pytest.raises(projects.ProjectError, match="project name"):
        projects.create(values(tmp_path), name)


def test_a_non_trac_directory_is_not_taken_over(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "file").write_text("mine")
    with pytest.raises(projects.ProjectError, match="not a Trac environment"):
        projects.create(values(tmp_path), "data")
    assert (tmp_path / "data" / "file").read_text() == "mine"
