"""The web console: the pipeline DAG, repos and files, lineage, jobs and datums, runs,
models and deployments, and monitoring, as HTML pages a browser can share by URL.

An adapter beside the CLI and the server (DESIGN.md, Layers): every page reads through
the face (cairn.api.protocol's ClientProtocol), the same calls the CLI makes, and the
buttons of a deployment call the same methods as ``cairn set traffic`` and ``cairn
rollback deployment``. It holds no behaviour of its own.

Stack: server-rendered Jinja2 templates, SVG drawn in Python (the DAG's layered layout,
metric and drift charts), one stylesheet and one short script of our own for live logs.
Nothing is fetched from elsewhere and nothing needs Node: the wheel carries it all.

Modules:

- ``app``: the pages (``add_pages(app, open_session)``) and ``create_console_app(face)``,
  what ``cairn console`` serves over one client (embedded or remote).
- ``face``: ``GuardedFace``, the face as one caller of ``cairn server`` may use it: every
  call passes the server's guard as an API call does.
- ``server``: ``add_console(app, client, guard)``, the pages beside the API of ``cairn
  server`` with a login form that keeps the caller's token in a cookie.
- ``graph``, ``charts``: the SVG drawings.

Invariants: pages paginate on the server (``PER_PAGE`` rows), so a folder of a million
files or a job of a million datums sends one page to the browser; a page never holds a
secret value for a caller the server would mask it from (``Session.mask``).
"""
