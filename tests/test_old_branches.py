"""The smart server on branches of bzr's first formats, without Apache (the
end-to-end twin is tests/test_e2e_old_branches.py): the real brz client, a
tree made by `brz init --format=F` (tests/old_branches.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from old_branches import commit, make_old_tree
from smart_harness import Server, with_credentials
from stack import Brz

from trac_breezy.smart_server.access import ANONYMOUS_VERBS

# bzr 0.x's all-in-one format, knit's branch format 5, and today's for contrast.
OLDEST = ("weave", "metaweave", "knit", "2a")


@pytest.fixture
def old_server(server: Server, tmp_path: Path) -> Server:
    make_old_tree(server.root, Brz(tmp_path / "maker"), OLDEST)
    return server


@pytest.mark.parametrize("fmt", OLDEST)
def test_anonymous_reads_of_the_oldest_formats(old_server: Server, tmp_path: Path, fmt: str):
    reader = Brz(tmp_path / "reader")
    url = old_server.url(f"branches/{fmt}")
    old_server.seen.clear()
    reader("branch", url, str(tmp_path / "copy"))
    reader("checkout", url, str(tmp_path / "checkout"))
    assert f"second commit of {fmt}" in reader("log", "--line", url).stdout
    assert reader("cat", url + "/NEWS").stdout == f"second commit of {fmt}\n"
    assert reader.revno(tmp_path / "copy") == reader.revno(tmp_path / "checkout") == 2
    assert {status for _, status, _ in old_server.seen} == {"200"}
    assert {verb for verb, _, _ in old_server.seen} <= ANONYMOUS_VERBS


@pytest.mark.parametrize("fmt", ("metaweave", "knit"))
def test_a_checkout_of_a_format_5_branch_commits(old_server: Server, tmp_path: Path, fmt: str):
    """Breezy's own handler failed: 'BzrBranch5' object has no attribute
    '_get_all_reference_info' (old_formats.NoReferenceInfo)."""
    writer = Brz(tmp_path / "writer")
    with_credentials(writer, old_server, "alice", "wonderland")
    url = old_server.url(f"branches/{fmt}")
    writer("checkout", url, str(tmp_path / "checkout"))
    commit(writer, tmp_path / "checkout", "MORE", "third")
    assert writer.revno(url) == 3


def test_writes_to_a_weave_branch_are_refused_naming_brz_upgrade(old_server: Server, tmp_path):
    writer = Brz(tmp_path / "writer")
    with_credentials(writer, old_server, "alice", "wonderland")
    url = old_server.url("branches/weave")
    writer("branch", url, str(tmp_path / "local"))
    commit(writer, tmp_path / "local", "MORE", "third")
    result = writer("push", url, cwd=tmp_path / "local", check=False)
    assert result.returncode == 3
    assert result.stderr.splitlines()[-1] == (
        "brz: ERROR: Cannot lock this branch: it is in a pre-0.8 bzr format (weave) that "
        "cannot be changed over the network; convert it where it is stored with "
        "`brz upgrade --format=2a` (branching it works)"
    )
    assert writer.revno(url) == 2


# Run in a fresh interpreter: which module registers the formats is decided
# at its first import.
_OPEN_WEAVE = (
    "import sys; from trac_breezy.bzr_formats import register_all; register_all(); "
    "from breezy.branch import Branch; print(Branch.open(sys.argv[1]).revno())"
)


def test_the_weave_formats_come_from_breezy_s_own_file_never_the_plugin_path(tmp_path: Path):
    """A `weave_fmt` planted in the servers' user's home or on BRZ_PLUGIN_PATH
    (code, if it ran) is never loaded: only Breezy's own module is."""
    brz = Brz(tmp_path / "maker")
    make_old_tree(tmp_path / "tree", brz, ("weave",))
    marker = tmp_path / "planted-plugin-ran"
    home = tmp_path / "home"
    for folder in (home / ".config" / "breezy" / "plugins", tmp_path / "plugin-path"):
        planted = folder / "weave_fmt"
        planted.mkdir(parents=True)
        (planted / "__init__.py").write_text(f"open({str(marker)!r}, 'a').write('ran\\n')\n")
    env = {**brz.env, "HOME": str(home), "BRZ_PLUGIN_PATH": str(tmp_path / "plugin-path")}
    result = subprocess.run(
        [sys.executable, "-c", _OPEN_WEAVE, str(tmp_path / "tree" / "branches" / "weave")],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=120,
        check=False,
    )
    assert not marker.exists()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2"
