"""Code that runs in the user's `brz` client, not in the container.

Each module here is a self-contained Breezy plugin that users install in
their own Breezy (a single file in Breezy's `plugins` directory, or
`BRZ_PLUGINS_AT=name@/path/to/name.py`); the container only serves the files
for download. So these modules import nothing from the rest of `trac_breezy`
(tests/test_layout.py checks it), keep to the Python and Breezy versions users
have (Python 3.9+, Breezy 3.3.x), and change nothing when the Breezy they meet
is not the one they were written for.

* `trac_breezy_streaming`: sends large smart requests (pushes) to a
  trac-breezy server as they are produced, as chunked HTTP POSTs, instead of
  Breezy 3.3's build-the-whole-body-in-memory-first.
"""
