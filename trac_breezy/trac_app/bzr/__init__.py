"""Trac's version-control backend for Bazaar (repository type ``bzr``), read through Breezy.

Split like Trac's own git backend (``PyGIT`` under ``git_fs``): a storage
layer that knows Breezy and not Trac, and a connector layer that knows Trac.

Storage layer (no Trac imports; raises ``storage.BzrStorageError``):

- `storage`: one branch, opened read-only (`BranchHandle`), the branches
  below a folder, the changes between two trees, and the error type;
- `confinement`: opening a branch only inside the repository's directory
  (real paths; references and stacked-on branches too; never the network);
- `content`: file content as a stream, never the whole file in memory;
- `index`: the revision graph of a branch tip and of all branches;
- `caches`: the bounded process-wide caches and the switch to clear them.
- `collectable`: Breezy repositories made freeable (a Rust extension's
  reference cycle the garbage collector cannot see).

Connector layer (Trac's ``trac.versioncontrol.api``):

- `connector`: the Trac plugin entry point: the components, the cached
  mode, `notify_new_revisions`, and the design of the whole backend;
- `repository`: `BzrRepository`: revision strings, order, nodes, diffs;
- `history`: which revisions changed a path;
- `node`: `BzrNode` and `BzrChangeset`;
- `naming`: Trac paths and revision strings;
- `errors`: storage errors turned into `TracError` / `InvalidRepository`.
"""
