"""``fairness-pipeline api``: serve the transparency API, and create, list and revoke its tokens.

``api [--host 127.0.0.1] [--port 8000]`` runs in the foreground like ``ui``: Ctrl-C, SIGTERM or closing the terminal
stops it after the requests in flight. ``api token create`` prints the token alone on the last line of its output;
it is shown only then (the database keeps its SHA-256 digest only).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from fairness_pipeline.cli.database import open_database, require_tenant, resolve_url
from fairness_pipeline.cli.output import EXIT_USAGE, console, fail, table_console

NO_PRETTY_EXCEPTIONS = {"pretty_exceptions_enable": False, "pretty_exceptions_show_locals": False}

api_app = typer.Typer(
    help="The transparency API over HTTP, and its tokens.", add_completion=False, **NO_PRETTY_EXCEPTIONS
)
token_app = typer.Typer(help="API tokens: create, list, revoke.", no_args_is_help=True, **NO_PRETTY_EXCEPTIONS)
api_app.add_typer(token_app, name="token")


@api_app.callback(invoke_without_command=True)
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8000,
    pool_size: Annotated[int, typer.Option(min=1, max=100, help="Database connections.")] = 8,
) -> None:
    """Serve the API on this project's database until Ctrl-C or SIGTERM."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from fairness_pipeline.api.app import create_app
    from fairness_pipeline.ui import signals_as_interrupt

    with open_database():
        pass  # start the embedded server and apply migrations before serving
    app = create_app(resolve_url(), pool_size=pool_size)
    config = uvicorn.Config(app, host=host, port=port, log_level="info", server_header=False, proxy_headers=False)
    server = uvicorn.Server(config)
    console.print(f"transparency API on http://{host}:{port}/v1 (OpenAPI: /v1/openapi.json); Ctrl-C stops")
    try:
        with signals_as_interrupt():
            server.run()
    except KeyboardInterrupt:
        pass  # uvicorn has finished the requests in flight and closed the pool
    console.print("stopped the transparency API")


@token_app.command("create")
def create(
    tenant: Annotated[str | None, typer.Option("--tenant", help="The tenant the token reads.")] = None,
    operator: Annotated[bool, typer.Option("--operator", help="A token for every tenant instead.")] = False,
    role: Annotated[str, typer.Option(help="read, or review (may also request, acknowledge, resolve).")] = "read",
    name: Annotated[
        str | None, typer.Option(help="Who holds it (recorded as the reviewer); default: the tenant's name.")
    ] = None,
) -> None:
    """Create a token; it is printed once, alone on the last line."""
    from fairness_pipeline.store.api_tokens import ROLES, create_token

    if (tenant is None) == (not operator):
        fail("give --tenant T, or --operator for a token reading every tenant", EXIT_USAGE)
    if role not in ROLES:
        fail(f"--role must be {' or '.join(ROLES)}", EXIT_USAGE)
    with open_database() as conn:
        if tenant is not None:
            require_tenant(conn, tenant)
        try:
            token, secret = create_token(
                conn, name or (f"{tenant} {role}" if tenant else f"operator {role}"), tenant, role
            )
        except ValueError as exc:
            fail(str(exc), EXIT_USAGE)
    scope = f"tenant {tenant}" if tenant else "every tenant (operator)"
    console.print(f"created API token {token.id} ({token.role}, {scope}, name {token.name!r}); it is shown only now:")
    print(secret)


@token_app.command("list")
def list_command(
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked tokens.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Tokens (never their text): id, name, tenant, role, created, revoked."""
    from fairness_pipeline.store.api_tokens import list_tokens

    with open_database() as conn:
        tokens = list_tokens(conn, include_revoked)
    if as_json:
        print(json.dumps([t.as_dict() for t in tokens], indent=2))
        return
    from rich.table import Table

    table = Table(title="API tokens (times UTC)")
    for column in ("id", "name", "tenant", "role", "created", "revoked"):
        table.add_column(column)
    for t in tokens:
        data = t.as_dict()
        table.add_row(
            str(t.id),
            t.name,
            t.tenant_id or "(every tenant)",
            t.role,
            data["created_at"][:16],
            (data["revoked_at"] or "")[:16],
        )
    table_console().print(table)


@token_app.command("revoke")
def revoke(token_id: Annotated[int, typer.Argument(help="Token id (from `api token list`).")]) -> None:
    """Revoke a token: requests with it are refused (401) from now on."""
    from fairness_pipeline.store.api_tokens import revoke_token

    with open_database() as conn:
        token = revoke_token(conn, token_id)
    if token is None:
        fail(f"no active API token {token_id}", EXIT_USAGE)
    console.print(f"revoked API token {token.id} ({token.name!r})")
