"""Pages for browsers: the host's front page and the pages of the Bazaar tree.

Trac's own project index is a bare list of names, and Apache's directory
listing of the tree shows `.bzr/` internals. These pages show what a visitor
needs instead: each project with its description, latest activity, branches
and the exact `brz` commands, and the tree's folders as branches. They run in
the `trac` daemon group, with Trac's look.

- `urls`: the public URLs of branches and the `brz` commands for them;
- `projects`: what the front page shows of each Trac project (cached);
- `activity`: a project's latest change that anonymous visitors may see;
- `folders`: what a folder of the tree holds, `.bzr` never;
- `render`: the Jinja2 templates (`templates/`);
- `app`: the two WSGI apps (`wsgi/trac.wsgi`, `wsgi/folders.wsgi`).
"""
