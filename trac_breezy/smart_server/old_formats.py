"""Branches of bzr's first years: the answers they need from a smart server.

Breezy 3.3 reads every format bzr ever wrote, but registers the pre-0.8 ones
(`weave`, all in one `.bzr`; `metaweave`) only in its built-in plugin
`weave_fmt`, which only brz's command line loads (`brz serve` too): without
it, such a branch is `UnknownFormatError` over bzr+http:// and http:// alike
(the client asks the smart server first). `register` loads that one module,
never the plugin path (`trac_breezy.bzr_formats`).

`NoReferenceInfo` answers `Branch.get_all_reference_info` for branches whose
format keeps no tree-reference locations (branch format 5: `knit`,
`metaweave`; format 4: `weave`) with what they hold: nothing. Breezy's own
handler asks such a branch for a method it does not have (AttributeError,
`breezy/bzr/smart/branch.py`, `SmartServerBranchRequestGetAllReferenceInfo`),
and a 3.3 client asks it while making a checkout, because
`RemoteBranchFormat.initialize` (`breezy/bzr/remote.py`) fills the remote
branch's format in with Breezy's default (format 7, which keeps references)
when it creates the checkout's local branch. `brz serve` fails the same way.

`CloningMetadirOfAllInOne` and `CheckoutMetadirOfAllInOne` answer "which
format should a copy of this have?" for a weave branch with the one Breezy
itself picks when an all-in-one branch must be copied into split parts
(`1.6`): Breezy's own answer (the weave format again) is one its client
cannot create, so `brz branch` failed in `BzrDirPreSplitOut.create_branch`
(NotImplementedError, `breezy/plugins/weave_fmt/bzrdir.py`) and `brz
checkout` in `Branch._get_checkout_format` (`BzrDirFormat6` has no
`set_branch_format`, `breezy/branch.py`), on `brz serve` too.

A weave branch's lock is a file lock that no request can leave in place for
the next (`lockable_files.TransportLock.leave_in_place` raises
NotImplementedError), so no smart server can change it: a write is refused
with one line naming `brz upgrade` (`refuse_lock_of_all_in_one`).
"""

from __future__ import annotations

from breezy.bzr.smart import branch as smart_branch
from breezy.bzr.smart import bzrdir as smart_bzrdir
from breezy.bzr.smart import request as smart_request
from fastbencode import bencode  # type: ignore[attr-defined]

from trac_breezy.bzr_formats import register_all


def register() -> None:
    """Register the pre-0.8 formats as `brz` does, from Breezy's own module (`bzr_formats`)."""
    register_all()


class NoReferenceInfo(smart_branch.SmartServerBranchRequestGetAllReferenceInfo):
    """An empty list for a branch whose format keeps no reference locations."""

    def do_with_branch(self, branch: object) -> smart_request.SmartServerResponse:
        if not getattr(branch._format, "supports_reference_locations", False):  # type: ignore[attr-defined]
            return smart_request.SuccessfulSmartServerResponse((b"ok",), bencode([]))
        return super().do_with_branch(branch)


def _metadir_names(bzrdir: object) -> tuple[bytes, bytes, bytes]:
    """(control, repository, branch) network names of the format Breezy itself
    picks when an all-in-one branch must be copied into split-out parts
    (`BzrDirPreSplitOut.cloning_metadir(require_stacking=True)`: "1.6")."""
    control_format = bzrdir.cloning_metadir(require_stacking=True)  # type: ignore[attr-defined]
    return (
        control_format.network_name(),
        control_format.repository_format.network_name(),
        control_format.get_branch_format().network_name(),
    )


class CloningMetadirOfAllInOne(smart_bzrdir.SmartServerBzrDirRequestCloningMetaDir):
    """`brz branch` of a weave branch: a format the client can create (see the module docstring)."""

    def do_bzrdir_request(self, require_stacking: bytes) -> smart_request.SmartServerResponse:
        if not self._bzrdir._format.fixed_components:  # type: ignore[attr-defined]
            return super().do_bzrdir_request(require_stacking)
        control, repository, branch = _metadir_names(self._bzrdir)
        return smart_request.SuccessfulSmartServerResponse(
            (control, repository, (b"branch", branch))
        )


class CheckoutMetadirOfAllInOne(smart_bzrdir.SmartServerBzrDirRequestCheckoutMetaDir):
    """`brz checkout` of a weave branch: a format the client can create."""

    def do_bzrdir_request(self) -> smart_request.SmartServerResponse:
        if not self._bzrdir._format.fixed_components:  # type: ignore[attr-defined]
            return super().do_bzrdir_request()
        return smart_request.SuccessfulSmartServerResponse(_metadir_names(self._bzrdir))


# What a write to an all-in-one (weave) branch gets instead of Breezy's
# NotImplementedError (module docstring); brz prints "Cannot lock <lock>: <why>".
ALL_IN_ONE_LOCK = b"this branch"
ALL_IN_ONE_WHY = (
    b"it is in a pre-0.8 bzr format (weave) that cannot be changed over the network; "
    b"convert it where it is stored with `brz upgrade --format=2a` (branching it works)"
)


def all_in_one(branch: object) -> bool:
    """Whether `branch` lives in an all-in-one control directory (weave: bzr 0.x)."""
    return bool(getattr(branch.controldir._format, "fixed_components", False))  # type: ignore[attr-defined]


def refuse_lock_of_all_in_one() -> smart_request.SmartServerResponse:
    """The one-line refusal of a write to an all-in-one branch (`LockFailed`)."""
    return smart_request.FailedSmartServerResponse((b"LockFailed", ALL_IN_ONE_LOCK, ALL_IN_ONE_WHY))
