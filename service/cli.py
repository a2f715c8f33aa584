"""The `commissions` command: serve, programs and keys, OpenAPI export."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from service.errors import ProgramNotFound, ServiceError

# The rest is imported by the commands that use it: `serve --workers N` keeps a small
# supervising process, and each command loads only what it needs.
if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from service.config import Settings

app = typer.Typer(
    help="Commission engine for network marketing and affiliate programs.",
    no_args_is_help=True,
    add_completion=False,
)
program_app = typer.Typer(help="Programs (tenants).", no_args_is_help=True)
key_app = typer.Typer(help="API keys.", no_args_is_help=True)
secret_app = typer.Typer(help="Webhook signing secrets (Standard Webhooks).", no_args_is_help=True)
app.add_typer(program_app, name="program")
app.add_typer(key_app, name="key")
period_app = typer.Typer(help="Periods: closing a month.", no_args_is_help=True)
app.add_typer(secret_app, name="webhook-secret")
app.add_typer(period_app, name="period")
integration_app = typer.Typer(
    help="Store integrations: Shopify, WooCommerce and Stripe webhooks.", no_args_is_help=True
)
app.add_typer(integration_app, name="integration")

T = TypeVar("T")


def _print(value: dict[str, Any]) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


def database_in_use(settings: Settings) -> str:
    """Which database a command works on, as said to the user (never with a password)."""
    if settings.database_url:
        from sqlalchemy.engine import make_url

        url = make_url(settings.database_url).render_as_string(hide_password=True)
        return f"the database {url} (DATABASE_URL)"
    return f"the embedded PostgreSQL in {settings.data_dir} (COMMISSIONS_DATA_DIR)"


def admin_command() -> str:
    """How to run this `commissions` from a shell, as the running process was started: the
    bare name when it is on PATH, the script beside the interpreter (a virtualenv's bin/
    not on PATH), else the interpreter with `-m service`. Settings that choose the
    database are passed on, so the command reaches the same data."""
    script = Path(sys.executable).parent / "commissions"
    found = shutil.which("commissions")
    if script.is_file() and found is not None and Path(found).resolve() == script.resolve():
        command = "commissions"
    elif script.is_file():
        command = shlex.quote(str(script))
    else:
        command = f"{shlex.quote(sys.executable)} -m service"
    if "COMMISSIONS_DATA_DIR" in os.environ and "DATABASE_URL" not in os.environ:
        data_dir = shlex.quote(os.environ["COMMISSIONS_DATA_DIR"])
        command = f"COMMISSIONS_DATA_DIR={data_dir} {command}"
    return command


def _refuse(error: ServiceError, where: str) -> typer.Exit:
    """Print a refusal on stderr; a missing program names the database that lacks it."""
    detail = error.detail
    if isinstance(error, ProgramNotFound):
        detail = f"{detail} in {where}"
    typer.echo(json.dumps({"error": error.code, "detail": detail}), err=True)
    return typer.Exit(code=2)


def _using(settings: Settings) -> str:
    where = database_in_use(settings)
    typer.echo(f"commissions: using {where}", err=True)
    return where


async def _program_must_exist(session: AsyncSession, program_id: str) -> None:
    from service.db import programs as program_sql

    if await program_sql.get_program(session, program_id) is None:
        raise ProgramNotFound(f"program {program_id!r} does not exist")


def _run(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run one admin transaction against the configured (or embedded) database, saying on
    stderr which one: without COMMISSIONS_DATA_DIR an embedded database is created in the
    default place, which may not be the one a running service uses."""

    from service.config import Settings
    from service.db.engine import open_database
    from service.db.migrate import migrate
    from service.main import sessionmaker_for

    settings = Settings()
    where = _using(settings)

    async def main() -> T:
        async with open_database(settings) as engine:
            await migrate(engine)
            async with sessionmaker_for(engine)() as session, session.begin():
                return await work(session)

    try:
        return asyncio.run(main())
    except ServiceError as error:
        raise _refuse(error, where) from error


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="processes serving requests (one per core)")
    ] = 1,
) -> None:
    """Apply the migrations and serve the HTTP API."""
    import uvicorn

    from service.config import Settings
    from service.logs import configure_logging

    settings = Settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    command = admin_command()
    same = " (with the same DATABASE_URL)" if settings.database_url else ""
    typer.echo(
        f"commissions: serving on http://{host}:{port} with {database_in_use(settings)}.\n"
        f"  In another terminal{same}, create a program and its admin key:\n"
        f"    {command} program create acme --currency USD\n"
        "  More keys:\n"
        f"    {command} key create --program acme --scope read\n"
        f"  API docs:  http://{host}:{port}/docs",
        err=True,
    )
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": 10,
    }
    if workers == 1:
        from service.main import create_app

        # The app's lifespan starts the embedded server and supervises it.
        uvicorn.run(create_app(settings), **options)
    elif settings.database_url:
        # Each worker builds the app from the environment and joins the same database.
        uvicorn.run("service.main:create_app", factory=True, workers=workers, **options)
    else:
        # This supervising process owns the embedded server: it starts it, restarts it when
        # it dies, and stops it after the last worker left. The workers connect to it as to
        # a server of their own (DATABASE_URL, inherited by the processes uvicorn spawns).
        import os

        from service.db import embedded

        with embedded.serving(settings.data_dir) as url:
            os.environ["DATABASE_URL"] = url
            uvicorn.run("service.main:create_app", factory=True, workers=workers, **options)


@program_app.command("create")
def program_create(
    program_id: Annotated[str, typer.Argument(metavar="ID", help="slug: a-z, 0-9 and '-'")],
    currency: Annotated[str, typer.Option(help="ISO 4217 code, e.g. USD")],
    timezone: Annotated[str, typer.Option(help="IANA zone; period boundaries")] = "UTC",
    name: Annotated[str | None, typer.Option(help="display name")] = None,
) -> None:
    """Create a program; prints it with its first API key (scope admin), shown only once."""

    from service.services import programs

    async def work(session: AsyncSession) -> dict[str, Any]:
        program, key = await programs.create_program(
            session, program_id=program_id, currency=currency, timezone=timezone, name=name
        )
        return {
            "program": {
                "id": program.program_id,
                "name": program.name,
                "currency": program.currency,
                "timezone": program.timezone,
                "created_at": program.created_at.isoformat(),
            },
            "api_key": key,
        }

    _print(_run(work))


@key_app.command("create")
def key_create(
    program: Annotated[str, typer.Option(help="program id")],
    scope: Annotated[list[str], typer.Option(help="read, events:write or admin; repeatable")],
) -> None:
    """Create an API key; prints it once. Only its hash is stored."""

    from service.services import programs

    async def work(session: AsyncSession) -> dict[str, Any]:
        key, row = await programs.create_api_key(session, program_id=program, scopes=scope)
        return {"api_key": key, "key_id": row.key_id, "scopes": list(row.scopes)}

    _print(_run(work))


@key_app.command("list")
def key_list(program: Annotated[str, typer.Option(help="program id")]) -> None:
    """List a program's keys (ids and scopes; the keys themselves are never stored)."""

    from service.db import programs as program_sql

    async def work(session: AsyncSession) -> dict[str, Any]:
        await _program_must_exist(session, program)
        rows = await program_sql.list_keys(session, program)
        return {
            "keys": [
                {
                    "key_id": r.key_id,
                    "scopes": list(r.scopes),
                    "created_at": r.created_at.isoformat(),
                    "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
                }
                for r in rows
            ]
        }

    _print(_run(work))


@key_app.command("revoke")
def key_revoke(
    program: Annotated[str, typer.Option(help="program id")],
    key_id: Annotated[str, typer.Argument(help="the key id shown by `key list`")],
) -> None:
    """Revoke a key at once."""

    from service.services import programs

    async def work(session: AsyncSession) -> dict[str, Any]:
        await _program_must_exist(session, program)
        await programs.revoke_api_key(session, program_id=program, key_id=key_id)
        return {"revoked": key_id}

    _print(_run(work))


@secret_app.command("create")
def secret_create(program: Annotated[str, typer.Option(help="program id")]) -> None:
    """Create a signing secret; prints it once. Several may be active while one rotates."""

    from service.intake import signatures

    async def work(session: AsyncSession) -> dict[str, Any]:
        await _program_must_exist(session, program)
        row = await signatures.create_secret(session, program)
        return {"id": row.secret_id, "secret": row.secret}

    _print(_run(work))


@secret_app.command("revoke")
def secret_revoke(
    program: Annotated[str, typer.Option(help="program id")],
    secret_id: Annotated[str, typer.Argument(help="the secret's id")],
) -> None:
    """Revoke a signing secret at once: signatures made with it are refused from now on."""

    from service.intake import signatures

    async def work(session: AsyncSession) -> dict[str, Any]:
        await _program_must_exist(session, program)
        await signatures.revoke_secret(session, program, secret_id)
        return {"revoked": secret_id}

    _print(_run(work))


@secret_app.command("list")
def secret_list(program: Annotated[str, typer.Option(help="program id")]) -> None:
    """List a program's signing secrets (ids and dates, not the secrets)."""

    from service.db import intake as intake_sql

    async def work(session: AsyncSession) -> dict[str, Any]:
        await _program_must_exist(session, program)
        rows = await intake_sql.all_secrets(session, program)
        return {
            "secrets": [
                {
                    "id": r.secret_id,
                    "created_at": r.created_at.isoformat(),
                    "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
                }
                for r in rows
            ]
        }

    _print(_run(work))


@integration_app.command("create")
def integration_create(
    program: Annotated[str, typer.Option(help="program id")],
    platform: Annotated[str, typer.Option(help="shopify, woocommerce or stripe")],
    secret: Annotated[
        str,
        typer.Option(
            help="the platform's signing secret (Shopify app client secret, WooCommerce"
            " webhook secret, Stripe whsec_...); '-' reads it from standard input"
        ),
    ],
    attribution_field: Annotated[
        str, typer.Option(help="the order field that carries the member id")
    ] = "member_id",
) -> None:
    """Connect a store to the program; prints the endpoint to paste into the platform.
    The secret is kept for verification only and never printed again."""

    from service.intake import stores

    from_stdin = secret == "-"  # noqa: S105 - the marker, not a secret
    given = sys.stdin.readline().strip() if from_stdin else secret

    async def work(session: AsyncSession) -> dict[str, Any]:
        row = await stores.create_integration(
            session, program, platform=platform, secret=given, attribution_field=attribution_field
        )
        return {
            "id": row.integration_id,
            "endpoint": f"/v1/integrations/{row.integration_id}/webhook",
            "platform": row.platform,
            "attribution_field": row.attribution_field,
        }

    _print(_run(work))


@integration_app.command("list")
def integration_list(program: Annotated[str, typer.Option(help="program id")]) -> None:
    """List a program's integrations (never their secrets)."""

    from service.db import stores as store_sql

    async def work(session: AsyncSession) -> dict[str, Any]:
        await _program_must_exist(session, program)
        rows = await store_sql.list_integrations(session, program)
        return {
            "integrations": [
                {
                    "id": r.integration_id,
                    "platform": r.platform,
                    "endpoint": f"/v1/integrations/{r.integration_id}/webhook",
                    "attribution_field": r.attribution_field,
                    "created_at": r.created_at.isoformat(),
                    "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
                }
                for r in rows
            ]
        }

    _print(_run(work))


@integration_app.command("revoke")
def integration_revoke(
    program: Annotated[str, typer.Option(help="program id")],
    integration_id: Annotated[str, typer.Argument(help="the integration's id")],
) -> None:
    """Disconnect a store at once: its endpoint answers 404 from now on (what it delivered
    stays)."""

    from service.db import stores as store_sql
    from service.errors import IntegrationNotFound

    async def work(session: AsyncSession) -> dict[str, Any]:
        await _program_must_exist(session, program)
        if not await store_sql.revoke_integration(session, program, integration_id):
            raise IntegrationNotFound(
                f"program {program!r} has no active integration {integration_id!r}"
            )
        return {"revoked": integration_id}

    _print(_run(work))


@period_app.command("close")
def period_close(
    period: Annotated[str, typer.Argument(metavar="PERIOD", help="the month, YYYY-MM")],
    program: Annotated[str, typer.Option(help="program id")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="compute and print the summary, write nothing")
    ] = False,
) -> None:
    """Close a period (every member's statement written, nothing in it changes again) and
    print its summary, as POST /v1/periods/{period}/close answers it. A period closed
    already prints its close's summary."""

    from datetime import UTC, datetime

    from service.db import programs as program_sql
    from service.services import periods

    async def work(session: AsyncSession) -> dict[str, Any]:
        found = await program_sql.get_program(session, program)
        if found is None:
            raise ProgramNotFound(f"program {program!r} does not exist")
        summary = await periods.close_period(
            session,
            found,
            periods.valid_period(period),
            dry_run=dry_run,
            now=datetime.now(UTC),
        )
        return periods.summary_json(summary, found.currency)

    _print(_run(work))


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="NDJSON events")],
    program: Annotated[str, typer.Option(help="program id")],
    batch_size: Annotated[int, typer.Option(min=1, max=5000, help="events per transaction")] = 500,
    parallel: Annotated[
        int,
        typer.Option(
            min=1,
            max=8,
            help="batches of sales and refunds applied at once, by as many processes",
        ),
    ] = 2,
    refused: Annotated[
        Path | None, typer.Option(help="write refused lines here, to fix and import again")
    ] = None,
) -> None:
    """Bulk-load events (one JSON envelope a line) with the webhook's exactly-once rules.

    Run it again after an interruption: what was applied is skipped as a duplicate.
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from service.config import Settings
    from service.db.engine import open_database
    from service.db.migrate import migrate
    from service.importer import import_events
    from service.main import sessionmaker_for
    from service.runtime import settle_heap

    settings = Settings()
    where = _using(settings)

    async def main() -> dict[str, Any]:
        async with open_database(settings) as engine:
            await migrate(engine)
            settle_heap()
            async with sessionmaker_for(engine)() as session:
                await _program_must_exist(session, program)
            columns = (
                "[progress.description]{task.description}",
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
            )
            refused_out = refused.open("w") if refused is not None else None
            try:
                with Progress(*columns, console=Console(stderr=True)) as bar:
                    task = bar.add_task(f"importing {file.name}", total=file.stat().st_size)
                    report = await import_events(
                        sessionmaker_for(engine),
                        program,
                        file,
                        batch_size=batch_size,
                        parallel=parallel,
                        database_url=engine.url.render_as_string(hide_password=False),
                        progress=lambda size: bar.advance(task, size),
                        refused_out=refused_out,
                    )
            finally:
                if refused_out is not None:
                    refused_out.close()
            return report.as_json()

    try:
        _print(asyncio.run(main()))
    except ServiceError as error:
        raise _refuse(error, where) from error


@app.command()
def openapi(
    output: Annotated[Path | None, typer.Option(help="file to write; stdout when omitted")] = None,
) -> None:
    """Export the OpenAPI document of the HTTP API."""
    document = openapi_json()
    if output is None:
        sys.stdout.write(document)
    else:
        output.write_text(document)


def openapi_json() -> str:
    from service.config import Settings
    from service.main import create_app

    return json.dumps(create_app(Settings()).openapi(), indent=2) + "\n"
