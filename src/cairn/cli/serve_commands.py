"""CLI commands for serve: the HTTP server for one deployment (cairn.server)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated

import typer

from cairn.cli.output import app, client, err, out, store_home
from cairn.data import InvalidPath

if TYPE_CHECKING:
    from cairn.serving.policy import Deployment

_SPEC = re.compile(
    r"^(?P<model>[^@/]+)(?:@(?P<alias>[^@/]+)|/(?P<version>\d+)|/(?P<latest>latest))$"
)


@app.command("serve")
def serve(
    spec: Annotated[str, typer.Argument(help="NAME@ALIAS, NAME/VERSION or NAME/latest of a model")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 5000,
    workers: Annotated[
        int, typer.Option(min=1, help="Server processes (each loads the models).")
    ] = 1,
    deployment: Annotated[
        str | None, typer.Option(help="Deployment name (default: the model's name).")
    ] = None,
    log_repo: Annotated[
        str | None,
        typer.Option("--log-repo", help="Repo the prediction log commits to [predictions]."),
    ] = None,
    no_log: Annotated[bool, typer.Option("--no-log", help="Do not log predictions.")] = False,
    max_body: Annotated[
        int | None,
        typer.Option(
            "--max-body", min=1, help="Largest request body in bytes (larger: 413) [64 MiB]."
        ),
    ] = None,
    allow_any_version: Annotated[
        bool,
        typer.Option(
            "--allow-any-version",
            help="Answer V2 paths naming any registered version (loaded on demand), not "
            "only the versions of the deployment's policy.",
        ),
    ] = False,
    strict_schema: Annotated[
        bool,
        typer.Option(
            "--strict-schema",
            help="Refuse columns the signature does not name, strings in numeric columns and "
            "fractions in integer ones (default: MLflow's rules: dropped, converted, "
            "truncated). MLflow models always follow MLflow's rules.",
        ),
    ] = False,
    admin: Annotated[
        bool,
        typer.Option(
            "--admin", help="Answer /admin/* routes (log flush), to loopback clients only."
        ),
    ] = False,
    header_timeout: Annotated[
        float | None,
        typer.Option(
            "--header-timeout",
            min=0.1,
            help="Seconds a request's line and headers may take to arrive (later: 408 and "
            "closed) [10].",
        ),
    ] = None,
    body_timeout: Annotated[
        float | None,
        typer.Option(
            "--body-timeout",
            min=0.1,
            help="Seconds a request's body may take to arrive after its headers [30].",
        ),
    ] = None,
) -> None:
    """Serve a model over MLflow's scoring protocol and the Open Inference Protocol V2.

    Creates deployment NAME (all traffic to the alias or version) unless it exists, then
    serves its traffic policy until interrupted; `cairn set traffic` and `cairn set alias`
    change what it serves without a restart. With CAIRN_URL (or a context) it serves
    from that cairn server: models, policy and the prediction log go through it.
    """
    from cairn.server import ServerSettings, serve
    from cairn.storage.settings import read_settings

    match = _SPEC.match(spec)
    if match is None:
        raise InvalidPath(f"{spec!r}: give a model as NAME@ALIAS, NAME/VERSION or NAME/latest")
    # What the spec names now, as `inspect model` resolves it: a missing model or alias
    # fails here, naming the command that sets it, before any deployment is made.
    version = client().models.get(spec)
    if match["latest"]:  # the latest version today, pinned: registering more moves nothing
        spec = f"{match['model']}/{version.version}"
    # Options not given are None, so CAIRN_SERVE_* and then the defaults decide them.
    settings = read_settings(
        ServerSettings,
        deployment=deployment or match["model"],
        # a cairn server (CAIRN_URL or the context's) serves the store when one is named;
        # a home given here would beat the context's URL
        home=None if read_settings().url else store_home(),
        log_repo="" if no_log else log_repo,
        max_body=max_body,
        allow_any_version=allow_any_version or None,
        admin=admin or None,
        strict_schema=strict_schema or None,
        header_timeout=header_timeout,
        body_timeout=body_timeout,
    )

    def ready(found: Deployment) -> None:
        routes = ", ".join(f"{t} {p:g}%" for t, p in found.policy.percentages().items())
        err.print(
            f"serving deployment {found.name} (model {found.model}, revision "
            f"{found.revision}: {routes}) with {workers} worker(s)"
        )
        out.print(f"http://{host}:{port}", soft_wrap=True)

    serve(
        settings,
        model=spec,
        host=host,
        port=port,
        workers=workers,
        on_ready=ready,
        on_warning=lambda message: err.print(f"warning: {message}"),
    )
