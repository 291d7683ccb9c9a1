"""``cairn server`` (one cairn for a team, cairn.server.team), ``cairn console`` (the web
console, cairn.console) and ``cairn version``."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated

import typer

from cairn.cli.output import Raw, app, client, err, out, print_json, print_table


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


@app.command("server")
def server(
    host: Annotated[
        str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8080,
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", help="PEM certificate chain: serve HTTPS.")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="PEM private key of --tls-cert.")
    ] = None,
    no_worker: Annotated[
        bool,
        typer.Option(
            "--no-worker",
            help="Run no pipelines or monitors here (another server or `cairn run` does).",
        ),
    ] = False,
    s3_port: Annotated[
        int | None,
        typer.Option(
            "--s3-port",
            min=1,
            max=65535,
            help="Also serve the S3 API (as `cairn s3-gateway`) on this port: same store, "
            "same roles; once auth is active, requests are signed with keys from "
            "`cairn create s3-key`.",
        ),
    ] = None,
    executor: Annotated[
        str | None,
        typer.Option(
            help="Where pipelines' datums run: local, ray or ray://HOST:PORT "
            "(default: CAIRN_EXECUTOR, else config.toml, else local)."
        ),
    ] = None,
) -> None:
    """Serve the store to a team over HTTP(S) until Ctrl-C: every command and the SDK talk
    to it when CAIRN_URL or a saved context names it; it runs pipelines and monitors.

    The store is the one the embedded commands use here (CAIRN_HOME, a .cairn folder, its
    config.toml or CAIRN_OBJECTS_URL / CAIRN_CATALOG_URL). Prints the URL it serves on
    stdout; the API is under /api/v1, its OpenAPI at /docs, the web console at /. With
    --s3-port, the S3 endpoint's URL is printed on stderr first.
    """
    from cairn.client import find_home
    from cairn.server.team.runner import serve_team

    if (tls_cert is None) != (tls_key is None):
        raise typer.BadParameter("give both --tls-cert and --tls-key, or neither")
    if executor is not None:
        from cairn.pipelines.errors import ExecutorError
        from cairn.pipelines.ray_executor import open_executor

        try:
            open_executor(executor)
        except ExecutorError as exc:
            raise typer.BadParameter(str(exc), param_hint="--executor") from None
        # The flag is the setting of highest precedence; the store this server opens, and
        # any worker process it starts, read it from the environment (cairn.storage.config).
        os.environ["CAIRN_EXECUTOR"] = executor
    home, exists = find_home()
    if not exists:
        err.print(f"cairn: using a new store at {home}")
    if tls_cert is None and not _loopback(host):
        err.print(
            f"warning: serving on {host} without TLS: data and tokens cross the network "
            "in clear text; give --tls-cert and --tls-key, or serve on 127.0.0.1 behind a "
            "TLS reverse proxy"
        )

    def ready(url: str) -> None:
        err.print(f"serving {home} with {'no' if no_worker else 'a'} pipeline worker")
        out.print(url, soft_wrap=True)

    serve_team(
        home,
        host=host,
        port=port,
        tls_cert=tls_cert,
        tls_key=tls_key,
        worker=not no_worker,
        s3_port=s3_port,
        on_ready=ready,
        on_s3_ready=lambda url: err.print(f"S3 API at {url}"),
    )


@app.command("console")
def console(
    host: Annotated[
        str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8081,
) -> None:
    """Serve the web console over this store (or CAIRN_URL's server) until Ctrl-C: the
    DAG, repos and files, lineage, jobs, runs, models and deployments, monitoring.

    Pages read through the same client as every command (so against a server, with its
    token and roles); the deployment buttons change traffic as `cairn set traffic` does.
    Prints the URL it serves on stdout. `cairn server` serves the same console at its /.
    """
    import uvicorn

    from cairn.console.app import create_console_app

    if not _loopback(host):
        err.print(
            f"warning: the console on {host} lets anyone who reaches it read this store and "
            "change deployments as you; serve it on 127.0.0.1, or use `cairn server` with auth"
        )
    face = client()
    out.print(f"http://{host}:{port}/", soft_wrap=True)
    uvicorn.run(
        create_console_app(face), host=host, port=port, log_level="warning", access_log=False
    )


@app.command("version")
def version(raw: Raw = False) -> None:
    """Print the version of this cairn and, when it talks to a server, the server's."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    from cairn.storage.settings import read_settings

    try:
        mine = installed("cairn")
    except PackageNotFoundError:  # a source checkout that is not installed
        import cairn

        mine = cairn.__version__
    url = read_settings().url
    rows = [["client", mine, "this process"]]
    theirs = None
    if url is not None:
        from cairn.api.remote.client import RemoteClient

        remote = client()
        assert isinstance(remote, RemoteClient)  # a url always opens one
        try:
            theirs = remote.server_version()
        except Exception:
            if not raw:  # the client's line still helps whoever reads the error
                print_table(["COMPONENT", "VERSION", "WHERE"], rows)
            raise
        rows.append(["server", theirs, url])
    if raw:
        return print_json({"client": mine, "server": theirs, "url": url})
    print_table(["COMPONENT", "VERSION", "WHERE"], rows)
