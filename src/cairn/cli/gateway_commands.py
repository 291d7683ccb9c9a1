"""``cairn s3-gateway``: the S3 REST API over the store (cairn.gateway)."""

from __future__ import annotations

from typing import Annotated

import typer

from cairn.cli.output import app, client, err, out


@app.command("s3-gateway")
def s3_gateway(
    host: Annotated[
        str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 9000,
    domain: Annotated[
        list[str] | None,
        typer.Option(
            "--domain",
            help="Serve virtual-host-style requests for REPO.DOMAIN (repeatable; default "
            "localhost).",
        ),
    ] = None,
    no_wait: Annotated[
        bool,
        typer.Option(
            "--no-wait",
            help="Answer a PutObject once committed, leaving the pipelines it triggers to "
            "`cairn run` or the server's worker.",
        ),
    ] = False,
) -> None:
    """Serve the S3 API until Ctrl-C: bucket = repo, key = BRANCH-or-COMMIT/PATH.

    Over the store the other commands use (CAIRN_URL or a saved context: a cairn server,
    which checks this gateway's own token; else the embedded one, whose S3 keys from
    `cairn create s3-key` sign requests once auth is active on it, any key before).
    Path-style and virtual-host-style requests. Prints the endpoint URL on stdout, e.g.
    for `aws --endpoint-url URL s3 ls s3://REPO/master/`.
    """
    from cairn.gateway import serve

    store = client(wait=not no_wait)
    data = getattr(store, "data", None)  # the embedded store: its catalog holds the keys
    keys = None
    if data is not None:
        from cairn.catalog.auth import AuthStore

        keys = AuthStore(data.catalog)
    if host not in ("127.0.0.1", "localhost", "::1") and (keys is None or not keys.is_active()):
        err.print(f"warning: the S3 gateway on {host} accepts any key from anyone who can reach it")

    def ready(url: str) -> None:
        out.print(url, soft_wrap=True)

    domains = tuple(domain) if domain else ("localhost",)
    serve(store, host=host, port=port, keys=keys, domains=domains, on_ready=ready)
