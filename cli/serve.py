"""`twin serve` runs the service; `twin draft` asks the running service's twin for drafts."""

from __future__ import annotations

import typer

from cli.context import console, print_json, require_service, settings, user_errors
from twin.domain import Platform


def serve(
    host: str | None = typer.Option(None, help="Address to bind (default 127.0.0.1; others need an API token)."),
    port: int | None = typer.Option(None, help="Port (default 8765)."),
) -> None:
    """Run the service: API, web page, model deployment and scheduler."""
    import uvicorn

    from serving.app import create_app

    config = settings()
    if host:
        config.serve.host = host
    if port:
        config.serve.port = port
    with user_errors():
        app = create_app(config)
    console.print(f"LLM Twin on http://{config.serve.host}:{config.serve.port}/  (API docs: /schema)")
    uvicorn.run(app, host=config.serve.host, port=config.serve.port, log_level="info")


def draft(
    author: str,
    prompt: str,
    link: list[str] = typer.Option([], "--link", help="A link to read first (repeatable)."),
    platform: Platform = typer.Option(Platform.linkedin, help="Where the post will go."),
    drafts: int = typer.Option(1, min=1, max=5, help="How many drafts."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Draft a post in the author's voice (through the running service)."""
    client = require_service()
    with user_errors(), client:
        body = {"author": author, "prompt": prompt, "links": link, "platform": platform.value, "drafts": drafts}
        with console.status("drafting..."):
            response = client.post("/api/chat", json=body, timeout=settings().serve.request_timeout_s)
        result = client.check(response)
    if as_json:
        print_json(result)
        return
    for number, item in enumerate(result["drafts"], 1):
        console.rule(f"draft {number}")
        critique = item.get("critique") or {}
        if item["text"]:
            console.print(item["text"])
        if not critique.get("passed", True):
            # A draft that misses the critique still comes back (the best there was), but never silently.
            console.print("[yellow]warning:[/] this draft did not pass the twin's own checks:", highlight=False)
            for reason in critique.get("reasons", [])[:5]:
                console.print(f"  - {reason}", style="yellow", highlight=False, markup=False)
        scores = item.get("scores") or {}
        if scores:
            console.print(", ".join(f"{k}: {v:.2f}" for k, v in scores.items() if isinstance(v, int | float)),
                          style="dim")
        for source in item.get("sources", []):
            console.print(f"  source: {source.get('url')}", style="dim")
    console.print(f"run {result['run_id']}", style="dim")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("draft")(draft)
