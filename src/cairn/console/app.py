"""The console's routes: HTML pages over the face (cairn.api.protocol), one function per
page. ``add_pages(app, open_session)`` gives them to an app: ``cairn console`` builds its
own over one client (``create_console_app``), ``cairn server`` adds them beside its API
with a session per request that passes its guard (cairn.console.face).

Pages read only through ``Session.face``; the three buttons of a deployment call
``deployments.apply`` / ``rollback`` as the CLI's ``set traffic`` / ``rollback deployment``
do. Long lists are cut into pages of ``PER_PAGE`` rows on the server."""

from __future__ import annotations

import difflib
import html
import mimetypes
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

import yaml
from fastapi import Request
from fastapi.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from cairn.api.wire import status_of
from cairn.catalog.errors import PermissionDenied, Unauthenticated
from cairn.console import charts, graph
from cairn.storage.errors import CairnError

__all__ = ["COOKIE", "PER_PAGE", "Session", "add_pages", "create_console_app"]

PER_PAGE = 50
COOKIE = "cairn_token"
PREVIEW_BYTES = 64 * 1024  # text shown on a file page; the rest is a download away
CSV_ROWS = 20
DIFF_BYTES = 64 * 1024  # a modified file's text diff only below this size (each side)
STATIC = Path(__file__).parent / "static"
IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml"}


@dataclass
class Session:
    """One request's view: ``face`` (a ClientProtocol), ``user`` (None while auth is
    off), ``mask`` applied to every page before it is sent (secret values -> ``***``)."""

    face: Any
    user: str | None = None
    mask: Callable[[str], str] = field(default=lambda text: text)
    auth: bool = False


Opener = Callable[[Request], Session]


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("cairn.console", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["size"] = _size
    env.filters["short"] = lambda s, n=12: (s or "")[:n]
    env.filters["q"] = lambda s: quote(str(s), safe="/")
    env.filters["duration"] = _duration
    return env


def _when(t: float | None) -> str:
    return "" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + " UTC"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _size(n: int | None) -> str:
    if n is None:
        return ""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)


@dataclass
class Page:
    """One page of a long list: ``items`` shown, links to the pages around it."""

    items: Sequence[Any]
    number: int
    count: int
    total: int
    prev: str | None
    next: str | None


def paginate(request: Request, items: Sequence[Any], per: int = PER_PAGE) -> Page:
    """The ``?page=N`` (1-based) slice of ``items``, with links keeping the other query
    parameters."""
    try:
        number = max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        number = 1
    count = max(1, -(-len(items) // per))
    number = min(number, count)
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]

    def link(n: int) -> str:
        return "?" + urlencode([*params, ("page", str(n))])

    return Page(
        items[(number - 1) * per : number * per],
        number,
        count,
        len(items),
        link(number - 1) if number > 1 else None,
        link(number + 1) if number < count else None,
    )


def _ref_path(path: str) -> str:
    return "/" + path.strip("/")


def add_pages(router: Any, open_session: Opener) -> None:
    """Add the console's pages to ``router`` (a FastAPI app: routes of its own, so that a
    listing of the app's routes names each page); ``open_session(request)`` gives each
    request its Session (it raises Unauthenticated: the page is the login form, 401)."""
    env = _env()

    def render(
        request: Request, session: Session, template: str, status: int = 200, **context: Any
    ) -> HTMLResponse:
        body = env.get_template(template).render(
            request=request, user=session.user, auth=session.auth, **context
        )
        return HTMLResponse(session.mask(body), status_code=status)

    def login_page(request: Request, why: str) -> HTMLResponse:
        """The login form in place of a page the caller may not see without a token (401),
        coming back to that page once logged in."""
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        body = env.get_template("login.html").render(
            request=request, title="log in", next=here, failed=why, user=None, auth=True
        )
        return HTMLResponse(body, status_code=401)

    def page(fn: Callable[..., Response]) -> Callable[..., Response]:
        """A page handler: its Session is opened first; cairn's errors become error pages
        (401: the login page)."""

        def handler(request: Request, **extra: Any) -> Response:
            kwargs = {**request.path_params, **extra}
            try:
                session = open_session(request)
                return fn(request, session, **kwargs)
            except Unauthenticated as exc:
                return login_page(request, str(exc))
            except (CairnError, TimeoutError) as exc:
                return render(
                    request,
                    session,
                    "error.html",
                    status_of(exc),
                    title=type(exc).__name__,
                    kind=type(exc).__name__,
                    message=str(exc),
                    denied=isinstance(exc, PermissionDenied),
                )

        return handler

    def get(path: str) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
        def deco(fn: Callable[..., Response]) -> Callable[..., Response]:
            wrapped = page(fn)

            def route(request: Request) -> Response:
                return wrapped(request)

            router.add_api_route(
                path, route, methods=["GET"], response_class=HTMLResponse, include_in_schema=False
            )
            return wrapped

        return deco

    def post(path: str) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
        def deco(fn: Callable[..., Response]) -> Callable[..., Response]:
            wrapped = page(fn)

            async def handler(request: Request) -> Response:
                if not _same_origin(request):
                    return PlainTextResponse("cross-site form refused", 403)
                form = parse_qs((await request.body()).decode("utf-8", "replace"))
                fields = {k: v[-1] for k, v in form.items()}
                from starlette.concurrency import run_in_threadpool

                return await run_in_threadpool(wrapped, request, form=fields)

            router.add_api_route(path, handler, methods=["POST"], include_in_schema=False)
            return wrapped

        return deco

    # -- the DAG ----------------------------------------------------------------------
    @get("/")
    def dag(request: Request, s: Session) -> Response:
        face = s.face
        repos = face.repos.list()
        pipelines = face.pipelines.list()
        last: dict[str, Any] = {}
        for job in face.jobs.list():
            last.setdefault(job.pipeline, job)
        models = face.models.list()
        deployments = face.deployments.list()
        nodes: list[graph.Node] = []
        edges: list[tuple[str, str]] = []
        piped = {p.name for p in pipelines}
        for r in repos:
            state = str(last[r.name].state) if r.name in last else ""
            nodes.append(
                graph.Node(
                    f"repo:{r.name}",
                    r.name,
                    "repo",
                    f"/repos/{quote(r.name)}",
                    state=state,
                    note=_size(r.size),
                )
            )
        for p in pipelines:
            job = last.get(p.name)
            state = str(job.state) if job else ""
            note = f"{job.processed} done, {job.skipped} skipped" if job else "no job yet"
            nodes.append(
                graph.Node(
                    f"pipeline:{p.name}",
                    p.name,
                    "pipeline",
                    f"/pipelines/{quote(p.name)}",
                    state=state,
                    note=note,
                )
            )
            edges += [(f"repo:{i}", f"pipeline:{p.name}") for i in p.input_repos]
            edges.append((f"pipeline:{p.name}", f"repo:{p.name}"))
        for m in models:
            aliases = ", ".join(f"{a}={v}" for a, v in sorted(m.aliases.items()))
            nodes.append(
                graph.Node(
                    f"model:{m.name}",
                    m.name,
                    "model",
                    f"/models/{quote(m.name)}",
                    note=aliases or f"v{m.latest}",
                )
            )
            for repo in {v.repo for v in face.models.versions(m.name)}:
                edges.append((f"repo:{repo}", f"model:{m.name}"))
        for d in deployments:
            nodes.append(
                graph.Node(
                    f"deployment:{d.name}",
                    d.name,
                    "deployment",
                    f"/deployments/{quote(d.name)}",
                    note=f"revision {d.revision}",
                )
            )
            edges.append((f"model:{d.model}", f"deployment:{d.name}"))
        drawing = Markup(graph.svg(nodes, edges))
        return render(
            request,
            s,
            "dag.html",
            title="DAG",
            drawing=drawing,
            repos=repos,
            pipelines=pipelines,
            last=last,
            piped=piped,
            models=models,
            deployments=deployments,
        )

    # -- repos, commits, files --------------------------------------------------------
    @get("/repos/{repo}")
    def repo(request: Request, s: Session, repo: str) -> Response:
        info = s.face.repos.get(repo)
        branch = request.query_params.get("branch") or ""
        commits = s.face.commits.list(f"{repo}@{branch}" if branch else repo)
        branches = s.face.branches.list(repo)
        return render(
            request,
            s,
            "repo.html",
            title=repo,
            repo=info,
            branches=branches,
            branch=branch,
            commits=paginate(request, commits),
        )

    @get("/repos/{repo}/at/{commit}/{path:path}")
    def browse(request: Request, s: Session, repo: str, commit: str, path: str) -> Response:
        path = _ref_path(path)
        ref = f"{repo}@{commit}:{path}"
        info = s.face.files.get(ref)
        commit_info = s.face.commits.get(f"{repo}@{commit}")
        crumbs = _crumbs(path)
        if info.type == "dir":
            children = s.face.files.list(ref)
            return render(
                request,
                s,
                "folder.html",
                title=f"{repo}:{path}",
                repo=repo,
                commit=commit,
                commit_info=commit_info,
                path=path,
                crumbs=crumbs,
                files=paginate(request, children),
            )
        kind, preview, table = _preview(s.face, ref, info)
        return render(
            request,
            s,
            "file.html",
            title=f"{repo}:{path}",
            repo=repo,
            commit=commit,
            commit_info=commit_info,
            path=path,
            crumbs=crumbs,
            file=info,
            kind=kind,
            preview=preview,
            table=table,
        )

    @router.get("/repos/{repo}/raw/{commit}/{path:path}", include_in_schema=False)
    def raw(request: Request, repo: str, commit: str, path: str) -> Response:
        try:
            session = open_session(request)
            ref = f"{repo}@{commit}:{_ref_path(path)}"
            info = session.face.files.get(ref)
            stream = session.face.files.open(ref)
        except (CairnError, TimeoutError) as exc:
            return PlainTextResponse(str(exc), status_of(exc))
        name = path.rsplit("/", 1)[-1]
        media = mimetypes.guess_type(name)[0] or "application/octet-stream"
        inline = request.query_params.get("inline") == "1" and media in IMAGE_TYPES
        disposition = "inline" if inline else "attachment"

        def chunks() -> Iterator[bytes]:
            try:
                while piece := stream.read(1 << 20):
                    yield piece
            finally:
                stream.close()

        return StreamingResponse(
            chunks(),
            media_type=media,
            headers={
                "content-disposition": f"{disposition}; filename*=UTF-8''{quote(name)}",
                "content-length": str(info.size),
                "x-content-type-options": "nosniff",
            },
        )

    @get("/repos/{repo}/diff")
    def diff(request: Request, s: Session, repo: str) -> Response:
        new = request.query_params.get("new") or "master"
        old = request.query_params.get("old") or None
        changes = s.face.files.diff(f"{repo}@{new}", f"{repo}@{old}" if old else None)
        shown = paginate(request, changes)
        texts: dict[str, Markup] = {}
        for c in shown.items:
            if c.status == "modified" and max(c.old_size or 0, c.new_size or 0) <= DIFF_BYTES:
                before = _text(s.face.files.read(f"{repo}@{old or new + '^'}:{c.path}"))
                after = _text(s.face.files.read(f"{repo}@{new}:{c.path}"))
                if before is not None and after is not None:
                    lines = difflib.unified_diff(
                        before.splitlines(),
                        after.splitlines(),
                        "old" + c.path,
                        "new" + c.path,
                        lineterm="",
                    )
                    texts[c.path] = Markup(_diff_html(lines))
        return render(
            request,
            s,
            "diff.html",
            title=f"diff {repo}",
            repo=repo,
            new=new,
            old=old or "",
            changes=shown,
            texts=texts,
        )

    # -- lineage ----------------------------------------------------------------------
    @get("/lineage/file/{repo}/{commit}/{path:path}")
    def file_lineage(request: Request, s: Session, repo: str, commit: str, path: str) -> Response:
        ref = f"{repo}@{commit}:{_ref_path(path)}"
        tree = _file_tree(s.face, ref, depth=0)
        forward = s.face.commits.lineage(f"{repo}@{commit}").downstream
        return render(
            request,
            s,
            "lineage_file.html",
            title=f"lineage {ref}",
            ref=ref,
            tree=tree,
            forward=forward,
        )

    @get("/lineage/model/{name}/{version:int}")
    def model_lineage(request: Request, s: Session, name: str, version: int) -> Response:
        lineage = s.face.models.lineage(f"{name}/{version}")
        return render(
            request, s, "lineage_model.html", title=f"lineage {name}/{version}", lineage=lineage
        )

    # -- pipelines and jobs -----------------------------------------------------------
    @get("/pipelines/{name}")
    def pipeline(request: Request, s: Session, name: str) -> Response:
        info = s.face.pipelines.get(name)
        spec = yaml.safe_dump(
            info.spec.model_dump(mode="json", exclude_defaults=True), sort_keys=False
        )
        jobs = s.face.jobs.list(name)
        return render(
            request,
            s,
            "pipeline.html",
            title=name,
            pipeline=info,
            spec=spec,
            jobs=paginate(request, jobs),
        )

    @get("/jobs/{pipeline}/{job}")
    def job(request: Request, s: Session, pipeline: str, job: str) -> Response:
        ref = f"{pipeline}@{job}"
        info = s.face.jobs.get(ref)
        state = request.query_params.get("state") or None
        counts = {
            "success": info.processed,
            "skipped": info.skipped,
            "failed": info.failed,
            "recovered": info.recovered,
        }
        total = counts.get(state, 0) if state else info.total
        # one page of datums from the face, never the whole job
        shown = paginate(request, range(total))
        start = (shown.number - 1) * PER_PAGE
        datums = s.face.jobs.datums(ref, state=state, offset=start, limit=PER_PAGE)
        shown.items = datums
        failing = s.face.jobs.datums(ref, state="failed", limit=1) if info.failed else []
        duration = (info.finished - info.started) if info.finished and info.started else None
        return render(
            request,
            s,
            "job.html",
            title=f"{pipeline}@{job[:12]}",
            job=info,
            datums=shown,
            failing=failing[0] if failing else None,
            duration=duration,
            state=state or "",
            counts=counts,
        )

    @get("/jobs/{pipeline}/{job}/datums/{datum}")
    def datum(request: Request, s: Session, pipeline: str, job: str, datum: str) -> Response:
        info = s.face.jobs.get(f"{pipeline}@{job}")
        found = s.face.jobs.datums(f"{pipeline}@{job}", datum=datum, limit=1)
        logs = s.face.jobs.logs(f"{pipeline}@{job}", datum=datum)
        return render(
            request,
            s,
            "datum.html",
            title=f"datum {datum[:12]}",
            job=info,
            datum=found[0] if found else None,
            logs=logs,
            datum_id=datum,
        )

    @get("/jobs/{pipeline}/{job}/logs.txt")
    def logs_text(request: Request, s: Session, pipeline: str, job: str) -> Response:
        datum_id = request.query_params.get("datum") or None
        info = s.face.jobs.get(f"{pipeline}@{job}")
        logs = s.face.jobs.logs(f"{pipeline}@{job}", datum=datum_id)
        text = "\n".join(f"== {e.heading}\n{e.text}" for e in logs)
        return PlainTextResponse(s.mask(text), headers={"x-cairn-job-state": str(info.state)})

    # -- runs -------------------------------------------------------------------------
    @get("/runs")
    def runs(request: Request, s: Session) -> Response:
        pipeline = request.query_params.get("pipeline") or None
        experiment = request.query_params.get("experiment") or None
        query = request.query_params.get("q", "").strip()
        found = [
            r
            for r in s.face.runs.list(experiment=experiment, pipeline=pipeline)
            if _run_matches(r, query)
        ]
        keys = sorted({k for r in found for k in r.metrics})[:6]
        return render(
            request,
            s,
            "runs.html",
            title="runs",
            runs=paginate(request, found),
            pipeline=pipeline or "",
            experiment=experiment or "",
            q=query,
            keys=keys,
        )

    @get("/runs/compare")
    def compare(request: Request, s: Session) -> Response:
        ids = [v for v in request.query_params.getlist("run") if v]
        comparison = s.face.runs.compare(ids)
        plots = _metric_charts(s.face, comparison.runs)
        return render(request, s, "compare.html", title="compare runs", cmp=comparison, plots=plots)

    @get("/runs/{run}")
    def run(request: Request, s: Session, run: str) -> Response:
        info = s.face.runs.get(run)
        return render(
            request,
            s,
            "run.html",
            title=f"run {info.name or info.id[:12]}",
            run=info,
            plots=_metric_charts(s.face, [info]),
        )

    # -- models and deployments -------------------------------------------------------
    @get("/models")
    def models(request: Request, s: Session) -> Response:
        return render(
            request,
            s,
            "models.html",
            title="models",
            models=s.face.models.list(),
            deployments=s.face.deployments.list(),
        )

    @get("/models/{name}")
    def model(request: Request, s: Session, name: str) -> Response:
        versions = s.face.models.versions(name)
        aliases = s.face.models.aliases(name)
        history = {a: s.face.models.alias_history(f"{name}@{a}") for a in sorted(aliases)}
        deployments = [d for d in s.face.deployments.list() if d.model == name]
        return render(
            request,
            s,
            "model.html",
            title=name,
            name=name,
            versions=list(reversed(versions)),
            aliases=aliases,
            history=history,
            deployments=deployments,
        )

    @get("/deployments/{name}")
    def deployment(request: Request, s: Session, name: str) -> Response:
        info = s.face.deployments.get(name)
        revisions = list(reversed(s.face.deployments.history(name)))
        aliases = s.face.models.aliases(info.model)
        return render(
            request,
            s,
            "deployment.html",
            title=f"deployment {name}",
            d=info,
            percentages=info.policy.percentages(),
            revisions=paginate(request, revisions),
            aliases=aliases,
            done=request.query_params.get("done", ""),
        )

    def _changed(name: str, what: str) -> Response:
        return RedirectResponse(f"/deployments/{quote(name)}?" + urlencode({"done": what}), 303)

    @post("/deployments/{name}/canary")
    def canary(request: Request, s: Session, name: str, form: dict[str, str]) -> Response:
        target = form.get("target", "").strip()
        percent = float(form.get("percent", "0") or 0)
        s.face.deployments.apply(
            name, canary=(target, percent), reason=f"console: canary {target}={percent:g}"
        )
        return _changed(name, f"{target} takes {percent:g}% of the traffic")

    @post("/deployments/{name}/promote")
    def promote(request: Request, s: Session, name: str, form: dict[str, str]) -> Response:
        target = form.get("target", "").strip()
        s.face.deployments.apply(name, reset=target, reason=f"console: promote {target}")
        return _changed(name, f"all traffic to {target}")

    @post("/deployments/{name}/rollback")
    def rollback(request: Request, s: Session, name: str, form: dict[str, str]) -> Response:
        s.face.deployments.rollback(name, reason="console: rollback")
        return _changed(name, "rolled back to the previous policy")

    # -- monitoring -------------------------------------------------------------------
    @get("/monitors")
    def monitors(request: Request, s: Session) -> Response:
        events = list(reversed(s.face.events.list(kind="monitor.", limit=500)))
        return render(
            request,
            s,
            "monitors.html",
            title="monitoring",
            monitors=s.face.monitors.list(),
            events=paginate(request, events),
        )

    @get("/monitors/{name}")
    def monitor(request: Request, s: Session, name: str) -> Response:
        info = s.face.monitors.get(name)
        state = s.face.monitors.state(name)
        rule = yaml.safe_dump(
            info.rule.model_dump(mode="json", exclude_defaults=True), sort_keys=False
        )
        events = list(reversed(s.face.events.list(subject=name)))
        return render(
            request,
            s,
            "monitor.html",
            title=f"monitor {name}",
            monitor=info,
            state=state,
            rule=rule,
            events=paginate(request, events),
        )

    @get("/events/{event_id:int}")
    def event(request: Request, s: Session, event_id: int) -> Response:
        found = [e for e in s.face.events.list(since=event_id - 1, limit=None) if e.id == event_id]
        if not found:
            from cairn.data import NotFound

            raise NotFound(f"no event {event_id} (or not one you may see)")
        e = found[0]
        features = (e.info.get("features") or []) if isinstance(e.info, dict) else []
        chart = None
        if features:
            chart = Markup(_drift_chart(features))
        info = yaml.safe_dump(e.info, sort_keys=False) if e.info else ""
        return render(
            request,
            s,
            "event.html",
            title=f"event {e.id}",
            e=e,
            info=info,
            features=features,
            chart=chart,
        )


# -- helpers of the pages ------------------------------------------------------------------
def _same_origin(request: Request) -> bool:
    """A form post comes from this console: its Origin (or Referer) names this host.
    (The token cookie is SameSite=Strict too; this guards the auth-off local console.)"""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source:
        return True  # non-browser clients send neither
    from urllib.parse import urlsplit

    return urlsplit(source).netloc == request.headers.get("host", "")


def _crumbs(path: str) -> list[tuple[str, str]]:
    parts = [p for p in path.split("/") if p]
    return [(p, "/".join(parts[: i + 1])) for i, p in enumerate(parts)]


def _text(data: bytes) -> str | None:
    if b"\x00" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _preview(face: Any, ref: str, info: Any) -> tuple[str, str, list[list[str]]]:
    """(kind, text, rows) for a file page: ``image`` (shown from the raw route), ``csv``
    (the first rows as a table), ``text`` (the first PREVIEW_BYTES), or ``binary``."""
    name = info.path.rsplit("/", 1)[-1].lower()
    media = mimetypes.guess_type(name)[0] or ""
    if media in IMAGE_TYPES:
        return "image", "", []
    head = face.files.read_range(ref, 0, PREVIEW_BYTES)
    text = _text(head) if head else ""
    if text is None:
        try:  # a cut in the middle of a UTF-8 sequence
            text = head[: len(head) - 3].decode("utf-8") if len(head) == PREVIEW_BYTES else None
        except UnicodeDecodeError:
            text = None
    if text is None:
        return "binary", "", []
    if name.endswith((".csv", ".tsv")):
        import csv
        import io

        delimiter = "\t" if name.endswith(".tsv") else ","
        rows = []
        for i, row in enumerate(csv.reader(io.StringIO(text), delimiter=delimiter)):
            if i > CSV_ROWS:
                break
            rows.append(row)
        return "csv", "", rows
    return "text", text, []


def _diff_html(lines: Any) -> str:
    out = []
    for line in lines:
        cls = "add" if line.startswith("+") else "del" if line.startswith("-") else "ctx"
        out.append(f'<span class="{cls}">{html.escape(line)}</span>')
    return "\n".join(out)


@dataclass
class LineageStep:
    """One file of a lineage tree: ``ref`` and what made it (``via``: pipeline@job,
    datum), with the input files it was made from."""

    repo: str
    commit: str
    path: str
    hash: str
    size: int
    pipeline: str | None = None
    job: str | None = None
    datum: str | None = None
    inputs: list[LineageStep] = field(default_factory=list)
    more: int = 0


MAX_DEPTH = 6
MAX_INPUTS = 40  # inputs drawn per file; the rest are counted


def _file_tree(face: Any, ref: str, depth: int) -> LineageStep:
    found = face.files.lineage(ref)
    step = LineageStep(
        found.repo,
        found.commit,
        found.path,
        found.hash,
        found.size,
        found.pipeline,
        found.job,
        found.datum,
    )
    if depth >= MAX_DEPTH:
        return step
    for f in found.inputs[:MAX_INPUTS]:
        child_ref = f"{f.repo}@{f.commit}:{f.path}"
        try:
            step.inputs.append(_file_tree(face, child_ref, depth + 1))
        except CairnError:
            step.inputs.append(LineageStep(f.repo, f.commit, f.path, f.hash, f.size))
    step.more = max(0, len(found.inputs) - MAX_INPUTS)
    return step


def _drift_chart(features: Sequence[Mapping[str, Any]]) -> str:
    """Bars of how far each drifted feature is past its threshold: ``-log10 p`` for a
    statistical test's p-value (drift when below the threshold: a longer bar is a smaller
    p), the distance itself for a distance (drift when above)."""
    import math

    tests = all(f.get("method") == "test" for f in features)
    values = {}
    for f in features:
        score = float(f.get("score") or 0.0)
        values[str(f.get("name"))] = -math.log10(max(score, 1e-300)) if tests else score
    title = "-log10 p-value per drifted feature" if tests else "distance per drifted feature"
    return charts.bars(title, values, list(values))


def _run_matches(run: Any, query: str) -> bool:
    """``key=value`` matches a param, tag or metric (as text); ``key>x`` / ``key<x`` a
    metric or a numeric param; anything else a substring of the run's name, id or pipeline."""
    if not query:
        return True
    for op in (">", "<", "="):
        if op in query:
            key, _, value = (p.strip() for p in query.partition(op))
            if op == "=":
                merged = {**run.tags, **run.params, **run.metrics}
                return key in merged and str(merged[key]) == value
            found = run.metrics.get(key, run.params.get(key))
            try:
                number, bound = float(found), float(value)
            except (TypeError, ValueError):
                return False
            return number > bound if op == ">" else number < bound
    text = query.lower()
    return any(text in (x or "").lower() for x in (run.name, run.id, run.pipeline, run.experiment))


def _metric_charts(face: Any, runs: Sequence[Any]) -> list[Markup]:
    keys = sorted({k for r in runs for k in r.metrics})
    plots = []
    for key in keys[:12]:
        series = {}
        for r in runs:
            if key in r.metrics:
                points = face.runs.history(r.id, key)
                # names repeat (a pipeline's runs share theirs): the id tells them apart
                series[f"{r.name} {r.id[:8]}" if r.name else r.id[:12]] = [
                    (float(p.step), float(p.value)) for p in points
                ]
        plots.append(Markup(charts.lines(key, series)))
    return plots


# -- the local console ---------------------------------------------------------------------
STATIC_FILES = {"console.css": "text/css", "console.js": "text/javascript"}


def add_static(app: Any) -> None:
    """``GET /static/{name}``: the console's stylesheet and script (a route, not a mount
    of a folder: it serves exactly these two files)."""

    def static(name: str) -> Response:
        media = STATIC_FILES.get(name)
        if media is None:
            return PlainTextResponse("no such file", 404)
        return Response(
            (STATIC / name).read_bytes(),
            media_type=media,
            headers={"cache-control": "public, max-age=300"},
        )

    app.add_api_route("/static/{name}", static, methods=["GET"], include_in_schema=False)


def create_console_app(face: Any) -> Any:
    """The app of ``cairn console``: every page over ``face`` (a ClientProtocol, embedded
    or remote), no login (the face's own identity is used)."""
    from fastapi import FastAPI

    app = FastAPI(title="cairn console", docs_url=None, redoc_url=None, openapi_url=None)
    session = Session(face)
    add_pages(app, lambda request: session)
    add_static(app)
    return app
