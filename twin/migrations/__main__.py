"""Write a new revision: ``python -m twin.migrations revision "add drafts.language"``.

Autogenerate compares `twin.schema` with a scratch SQLite database upgraded to the current head (or
with ``--url``'s database) and writes `versions/NNNN_<slug>.py`; read it before committing it.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from twin.migrations import alembic_config, upgrade


def _next_id(message: str) -> str:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    number = max((int(h.split("_", 1)[0]) for h in heads), default=0) + 1
    return f"{number:04d}_" + re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")[:40]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m twin.migrations")
    sub = parser.add_subparsers(dest="command", required=True)
    revision = sub.add_parser("revision", help="autogenerate a revision from the changes in twin/schema.py")
    revision.add_argument("message")
    revision.add_argument("--url", help="compare against this database (default: a scratch SQLite at head)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        engine = sa.create_engine(args.url or f"sqlite:///{Path(scratch) / 'head.db'}")
        upgrade(engine)
        with engine.begin() as connection:
            command.revision(
                alembic_config(connection), message=args.message, autogenerate=True, rev_id=_next_id(args.message)
            )
        engine.dispose()


if __name__ == "__main__":
    main()
