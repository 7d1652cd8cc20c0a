"""Breezy's smart server over HTTP inside mod_wsgi: many roots, one URL per branch.

Apache tells each request which tree it belongs to through the WSGI environ
(`setenv.SmartServerEnviron`: root, URL prefix, mode and realm, set with
`SetEnv`). One `app.SmartApp` is built per configuration and reused by every
later request and thread: building one starts its chroot servers and registers
its root for the tip-change hook, which must not happen per request.

This package knows nothing of Trac (a test checks that it never imports it):
`tip_changes` tells whoever listens that a request moved a branch tip, and
`wsgi/bzr.wsgi` wires the Trac side (`trac_app.push_announcer`) to it.

We do not use Breezy's stock `breezy.transport.http.wsgi.SmartWSGIApp`, for
reasons it cannot be configured around (access per request kind, memory,
confinement, lock contention, a client bug): docs/architecture.md, "The
smart server", says each.
"""
