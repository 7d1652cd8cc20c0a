"""TRAC_REPOSITORIES: connecting Trac projects to branches at start, with a real Trac."""

from __future__ import annotations

import pytest
from stack import Brz
from trac.env import Environment
from trac.versioncontrol.api import RepositoryManager

from trac_breezy.admin import repositories
from trac_breezy.container import settings


@pytest.fixture
def tree(tmp_path):
    trac_parent, bzr_root = tmp_path / "trac", tmp_path / "bzr"
    trac_parent.mkdir()
    bzr_root.mkdir()
    Environment(str(trac_parent / "code"), create=True).shutdown()
    brz = Brz(tmp_path / "home")
    brz("init-shared-repo", str(bzr_root / "code"))
    brz("init", str(bzr_root / "code" / "trunk"))
    return trac_parent, bzr_root


def values(trac_parent, bzr_root, mapping):
    return settings.load(
        {
            "TRAC_ENV_PARENT_DIR": str(trac_parent),
            "BZR_ROOT": str(bzr_root),
            "TRAC_REPOSITORIES": mapping,
        }
    )


@pytest.mark.parametrize("bad", ["code", "=x", "code=../etc", "code=/abs", "a b=c", "code=x,,y"])
def test_bad_mappings_are_refused(bad):
    with pytest.raises(settings.SettingsError, match=r"^TRAC_REPOSITORIES="):
        settings.load({"TRAC_REPOSITORIES": bad})


def test_connects_the_branch_once_and_says_what_changed(tree, capsys):
    trac_parent, bzr_root = tree
    repositories.configure(values(trac_parent, bzr_root, "code=code/trunk,code:all=code"))
    log = capsys.readouterr().err
    assert "code: enabled trac_breezy.*" in log
    assert f"code: added repository (default) at {bzr_root}/code/trunk" in log
    assert f"code: added repository all at {bzr_root}/code" in log

    env = Environment(str(trac_parent / "code"))
    repos = RepositoryManager(env).get_all_repositories()
    assert repos[""]["dir"] == f"{bzr_root}/code/trunk" and repos[""]["type"] == "bzr"
    assert repos["all"]["dir"] == f"{bzr_root}/code"
    assert RepositoryManager(env).get_repository("").get_youngest_rev() is None  # empty branch
    env.shutdown()

    repositories.configure(values(trac_parent, bzr_root, "code=code/trunk"))
    assert "code:" not in capsys.readouterr().err  # nothing missing, nothing changed


def test_an_existing_repository_is_left_alone(tree):
    trac_parent, bzr_root = tree
    repositories.configure(values(trac_parent, bzr_root, "code=code/trunk"))
    repositories.configure(values(trac_parent, bzr_root, "code=code"))
    env = Environment(str(trac_parent / "code"))
    assert RepositoryManager(env).get_all_repositories()[""]["dir"] == f"{bzr_root}/code/trunk"
    env.shutdown()


def test_a_missing_project_is_a_clear_error(tree):
    trac_parent, bzr_root = tree
    with pytest.raises(repositories.ConfigurationError, match=r"project 'nope'.*initenv"):
        repositories.configure(values(trac_parent, bzr_root, "nope=code/trunk"))
