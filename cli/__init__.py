"""The `twin` command: one group per noun, each command a few lines over the stage packages."""

from __future__ import annotations

import os

import typer

from cli import authors, ingest, search, sources

app = typer.Typer(
    name="twin",
    help="LLM Twin: collect a person's writing, fine-tune a twin on it, and draft posts in their voice.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(authors.app, name="author")
app.add_typer(sources.app, name="source")
app.command("ingest")(ingest.ingest)
app.command("import")(ingest.import_file)
app.add_typer(ingest.private_app, name="private")
app.command("search")(search.search)
app.command("documents")(search.documents)
app.command("promote")(search.promote)


def _register_optional_groups() -> None:
    """Groups owned by later stages register themselves the same way as the built-in ones."""
    import importlib

    for module in ("cli.train", "cli.serve", "cli.evals", "cli.schedule"):
        try:
            importlib.import_module(module).register(app)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


_register_optional_groups()


def main() -> None:
    from cli.terminal import quiet_terminal

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    quiet_terminal("twin")  # library logs and warnings to <data_dir>/logs/twin.log, not the terminal
    app()
