"""Who runs the servers: PUID/PGID, the owner of the tree, or www-data."""

from __future__ import annotations

import os

import pytest

from trac_breezy.container import identity, settings
from trac_breezy.container.identity import Identity

ROOT_ID = Identity(0, 0)


def test_identity_defaults_to_www_data_for_a_root_owned_tree(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to chown a test directory")
    os.chown(tmp_path, 0, 0)
    loaded = settings.load({"BZR_ROOT": str(tmp_path)})
    assert identity.resolve_identity(loaded, ROOT_ID) == Identity(33, 33)


def test_identity_follows_the_owner_of_the_tree(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to chown a test directory")
    os.chown(tmp_path, 1234, 4321)
    loaded = settings.load({"BZR_ROOT": str(tmp_path)})
    assert identity.resolve_identity(loaded, ROOT_ID) == Identity(1234, 4321)
    loaded = settings.load({"BZR_ROOT": str(tmp_path), "PGID": "77"})
    assert identity.resolve_identity(loaded, ROOT_ID) == Identity(1234, 77)


def test_puid_and_pgid_win(tmp_path):
    loaded = settings.load({"BZR_ROOT": str(tmp_path), "PUID": "2000", "PGID": "3000"})
    assert identity.resolve_identity(loaded, ROOT_ID) == Identity(2000, 3000)


def test_not_root_means_run_as_we_are(tmp_path):
    me = Identity(1500, 1500)
    loaded = settings.load({"BZR_ROOT": str(tmp_path), "PUID": "2000"})
    assert identity.resolve_identity(loaded, me) == me


def test_root_is_never_the_servers_user():
    with pytest.raises(identity.RootRefused, match="set PUID"):
        identity.become(Identity(0, 0))


def test_the_servers_user_is_worked_out_not_read_back(tmp_path):
    """An identity file the servers' user could rewrite to 0:0 is gone."""
    from trac_breezy.container import paths

    assert not hasattr(paths, "IDENTITY_FILE")
    loaded = settings.load({"BZR_ROOT": str(tmp_path), "PUID": "2000", "PGID": "3000"})
    if os.geteuid() == 0:
        assert identity.server_identity(loaded) == Identity(2000, 3000)
    else:
        assert identity.server_identity(loaded) == Identity.current()
