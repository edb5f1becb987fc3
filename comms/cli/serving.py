"""The `serve` command: web endpoints, output folder and the scheduler in one process."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from comms.core.errors import CommsError

from .common import (
    State,
    _open_store,
    _publish,
    _report,
    _signals,
    cli,
)

# What a command uses is imported when it runs (see comms.cli.common).
if TYPE_CHECKING:
    from comms.core.config import Config
    from comms.db.store import Store

if TYPE_CHECKING:
    from flask import Blueprint

    from comms.schedule.standby import Standby
    from comms.sending.desk_office import Office


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port."
)
@click.option(
    "--no-scheduler",
    is_flag=True,
    help="Serve the web endpoints only; run no scheduled sends, refresh, retries or purges.",
)
@click.option(
    "--trusted-proxy",
    metavar="ADDR",
    help="Address of a reverse proxy whose X-Forwarded-For/-Proto headers are believed "
    "(the rate limit and the consent ledger then see the visitor's address; HSTS is sent "
    "when it says https). Without it, the first request with X-Forwarded-For logs a warning.",
)
@click.pass_obj
def serve(
    state: State, host: str, port: int, no_scheduler: bool, trusted_proxy: str | None
) -> None:
    """Serve the subscriber pages, /healthz, /metrics and the output folder (waitress).

    Sign-up (/subscribe), confirmation (/confirm/…), unsubscribe with RFC 8058 one-click
    (/unsubscribe/…), preferences (/preferences/…); everything else comes from the output
    folder with ETags. Ctrl+C or SIGTERM stops after the queued confirmation mails went out.

    Unless --no-scheduler is given, the same process runs the scheduler (see `comms
    schedule`); a second `comms serve` on the same database serves the web endpoints only.
    On SIGTERM a running send finishes the messages in flight and hands the rest back.
    """
    from comms.alerts.metrics import MetricsEndpoint
    from comms.alerts.notify import Alerter
    from comms.audience.mailer import Mailer
    from comms.audience.subscriptions import Subscriptions
    from comms.bounces.webhooks import BrevoWebhook
    from comms.core import alarm
    from comms.core.files import exposure_warnings
    from comms.core.logs import configure_logging
    from comms.core.shutdown import Shutdown
    from comms.reports.clicks import Clicks
    from comms.reports.counting import ViewCounter
    from comms.web.app import create_app, listen, warn_about_proxy_headers

    config = state.config()
    # Before the app exists: Flask's logger then uses this handler.
    configure_logging(secrets=config.secret_values())
    store = _open_store(config)
    configure_logging(secrets=[store.secret])  # also when it came from the key file
    for warning in exposure_warnings(config):
        click.echo(warning, err=True)
    alarm.install(Alerter(config, store.engine))  # database outages reach the office
    mailer = Mailer(config)
    brevo = BrevoWebhook(config, store)
    views = ViewCounter(config, store.engine)
    metrics = MetricsEndpoint(config, store.engine)
    subscriptions = Subscriptions(config, store, mailer)
    clicks = Clicks(config, store.engine, store.secret)
    office = _office(config, store)
    app = create_app(
        config.output_dir,
        config,
        subscriptions,
        brevo,
        views=views,
        clicks=clicks,
        metrics=metrics,
        desk=_desk(office),
    )
    # Without a trusted proxy, the app drops the proxy headers itself (instead of waitress)
    # and says once when they arrive: everyone then shares the proxy's sign-up limit.
    proxy: dict[str, Any] = {"clear_untrusted_proxy_headers": False}
    if not trusted_proxy:
        warn_about_proxy_headers(app)
    else:
        proxy = {
            "trusted_proxy": trusted_proxy,
            "trusted_proxy_headers": {"x-forwarded-for", "x-forwarded-proto"},
            "clear_untrusted_proxy_headers": True,
        }
    server = listen(app, host, port, threads=8, ident="comms", **proxy)

    serving = True

    def stop() -> None:
        # Ends waitress's loop (it expects KeyboardInterrupt) and whatever the main thread
        # does before it; once the shutdown below has begun, a signal only sets the event.
        if serving:
            raise KeyboardInterrupt

    address = f"[{host}]" if ":" in host else host
    handle: Standby | None = None
    _signals(Shutdown(then=stop))
    try:  # everything after the handler: a SIGTERM at any point stops cleanly
        handle, mode = (None, "web only") if no_scheduler else _start_scheduler(config, store)
        click.echo(f"Serving on http://{address}:{server.effective_port}/ ({mode}; Ctrl+C stops)")
        _build_before_serving(config)
        if handle is not None:
            handle.start()  # after that build: its beats rebuild the same folder
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        serving = False
        server.close()
        if handle is not None:
            handle.shutdown()
        if office is not None:  # a send started on the desk finishes its messages in flight
            office.close()
        mailer.close()
        alarm.install(None)
        store.close()


def _office(config: Config, store: Store) -> Office | None:
    """The desk's services when `[desk] enabled`, else None; close it as the server stops."""
    if not config.settings.desk.enabled:
        return None
    from comms.sending.desk_office import Office

    return Office(config, store)


def _desk(office: Office | None) -> Blueprint | None:
    """The desk's pages over `office`, else None (then /desk/ does not exist)."""
    if office is None:
        return None
    from comms.web.desk_pages import desk_blueprint

    return desk_blueprint(office)


@cli.command()
@click.option(
    "--port", default=8010, show_default=True, type=click.IntRange(0, 65535), help="Port."
)
@click.pass_obj
def desk(state: State, port: int) -> None:
    """Serve the desk in the browser alone on http://127.0.0.1:PORT/desk/ (one-person office).

    The same pages as under `comms serve` with `[desk] enabled`, bound to this machine only;
    no subscriber pages, no scheduler. Accounts come from `comms users`.
    """
    import signal

    from comms.core.logs import configure_logging
    from comms.web.app import create_app, listen

    def stop(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    config = state.config()
    configure_logging(secrets=config.secret_values())
    if not config.settings.desk.enabled:
        raise CommsError("the desk is off; set `[desk] enabled = true` in comms.toml")
    store = _open_store(config)
    configure_logging(secrets=[store.secret])
    office = _office(config, store)
    try:
        app = create_app(config.output_dir, config, desk=_desk(office))
        server = listen(app, "127.0.0.1", port, threads=4, ident="comms")
        signal.signal(signal.SIGTERM, stop)
        click.echo(f"Desk on http://127.0.0.1:{server.effective_port}/desk/ (Ctrl+C stops)")
        try:
            server.run()
        except KeyboardInterrupt:
            pass
        finally:
            server.close()
    finally:
        if office is not None:
            office.close()
        store.close()


def _start_scheduler(config: Config, store: Store) -> tuple[Standby, str]:
    """Start the scheduler, or stand by while another process runs one on this database
    (docs/requirements.md R5): it takes over when that one's lease ends."""
    from comms.core.logs import configure_logging
    from comms.schedule.lease import holder
    from comms.schedule.runner import start_scheduler
    from comms.schedule.standby import Standby

    # The scheduler reports through logging (missed and failed jobs as errors) on stderr.
    configure_logging(secrets=config.secret_values())
    # Started once the output is built (serve), so that the two never write it at once.
    handle = start_scheduler(config, store)
    if handle is not None:
        return Standby(config, store, handle), "with the scheduler"
    owner = holder(store.engine)
    who = f" ({owner.owner})" if owner else ""
    mode = f"web only: another process{who} runs the scheduler on this database"
    return Standby(config, store), mode


def _build_before_serving(config: Config) -> None:
    """Bring the output folder up to date, so that every link in a mail has its page."""
    from comms.content.site import InvalidContent, load_valid_site

    try:
        site, warnings = load_valid_site(config)
    except InvalidContent as exc:
        failures, _ = _report(exc.problems, config.root, strict=False)
        click.echo(
            f"warning: {failures} content error(s); serving {config.output_dir} as it is", err=True
        )
        return
    _report(warnings, config.root, strict=False)
    write = _publish(config, site).write
    click.echo(f"Output: {config.output_dir} ({write.files} files, {len(write.written)} rewritten)")
