"""``fairness-pipeline attributes``: candidate attributes (self-identification), kept apart from events.

``load`` reads CSV or JSON Lines files in wide form and accounts for every line (stored, unchanged or rejected with
its reason); ``delete`` erases one person's attributes, their history and their rejected lines; ``dimensions`` prints
the dimension catalogue in force (``FAIRNESS_DIMENSIONS`` applied). Nothing printed names a candidate.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fairness_pipeline.cli.database import open_database
from fairness_pipeline.cli.output import EXIT_USAGE, console, fail, table_console

if TYPE_CHECKING:
    import pandas as pd

attributes_app = typer.Typer(
    help="Candidate attributes (self-identified sex, race/ethnicity, ...) and the dimension catalogue.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
)


ATTRIBUTES_OPTION_HELP = (
    "Also write a matching self-identification file (.csv or .jsonl) for every candidate of the generated events, "
    "for 'attributes load'; --bias and the other planted effects accept its dimensions (--bias sex=female:0.7)."
)


def generated_frames(config, attributes: Path | None) -> Iterator[pd.DataFrame]:
    """``generate``'s event frames; with ``--attributes FILE``, once they are all out, the self-identification file of
    every candidate they hold."""
    from fairness_pipeline import synthetic

    if attributes is None:
        yield from synthetic.generate_events(config)
        return
    candidates: dict[str, set[str]] = {}
    yield from synthetic.collect_candidates(synthetic.generate_events(config), candidates)
    fmt = "jsonl" if attributes.suffix.lower() in (".jsonl", ".ndjson") else "csv"
    count = synthetic.write_attributes(config, attributes, fmt, candidates)
    console.print(f"wrote the self-identification of {count:,} candidates to {attributes}")


def _catalogue():
    from fairness_pipeline.catalogue import CatalogueError, load_catalogue

    try:
        return load_catalogue()
    except CatalogueError as exc:
        fail(str(exc), EXIT_USAGE)


@attributes_app.command("load")
def load(
    files: Annotated[list[Path], typer.Argument(help="CSV or JSON Lines files (.gz allowed), wide form.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON on stdout.")] = False,
) -> None:
    """Load self-identification files: tenant_id, candidate_id, [collected_at,] then any catalogue attribute as a
    column. Blank, 'declined' or a missing column is unknown; a later load replaces a value and records when."""
    from fairness_pipeline.ingest.attributes import AttributeCounts, BrokenAttributeFileError, load_attribute_file
    from fairness_pipeline.ingest.reader import UnreadableFileError

    catalogue = _catalogue()
    totals = AttributeCounts()
    unreadable = False
    with open_database() as conn:
        for path in files:
            try:
                counts = load_attribute_file(conn, path, catalogue=catalogue)
            except UnreadableFileError as exc:
                if isinstance(exc, BrokenAttributeFileError):
                    totals += exc.attribute_counts
                unreadable = True
                console.print(f"[red]cannot read[/red] {exc}")
                continue
            totals += counts
            if not as_json:
                console.print(
                    f"{path}: read {counts.read:,}, stored {counts.stored:,}, unchanged {counts.unchanged:,}, "
                    f"rejected {counts.rejected:,}"
                )
    if as_json:
        print(json.dumps(totals.as_dict()))
    elif len(files) > 1:
        console.print(f"total: {totals.as_dict()}")
    if totals.rejected and not as_json:
        console.print("rejected lines are in candidate_attribute_rejects (source, line_number, reason)")
    if unreadable:
        raise typer.Exit(EXIT_USAGE)


@attributes_app.command("delete")
def delete(
    tenant: Annotated[str, typer.Option("--tenant", help="The candidate's tenant.")],
    candidate: Annotated[str, typer.Option("--candidate", help="The candidate whose attributes are erased.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows deleted as JSON on stdout.")] = False,
) -> None:
    """Erase one person's attributes, their history and their rejected input lines."""
    from fairness_pipeline.store.attributes import delete_candidate

    with open_database() as conn:
        deleted = delete_candidate(conn, tenant, candidate)
    if as_json:
        print(json.dumps(deleted))
        return
    console.print(
        f"erased {deleted['attributes']} attribute value(s), {deleted['history']} history row(s) and "
        f"{deleted['rejects']} rejected line(s) of the candidate"
    )


@attributes_app.command("dimensions")
def dimensions(
    as_json: Annotated[bool, typer.Option("--json", help="Print the catalogue as JSON on stdout.")] = False,
) -> None:
    """The dimension catalogue in force: dimensions, their source and values, and the intersections analysed."""
    catalogue = _catalogue()
    if as_json:
        document = {
            "files": list(catalogue.files),
            "dimensions": {
                d.name: {
                    "label": d.label,
                    "source": d.source,
                    "values": dict(zip(d.values, d.value_labels, strict=True)),
                }
                for d in catalogue.dimensions
            },
            "intersections": [list(parts) for parts in catalogue.intersections],
        }
        print(json.dumps(document, indent=2))
        return
    from rich.table import Table

    table = Table("dimension", "label", "source", "values")
    for d in catalogue.dimensions:
        table.add_row(d.name, d.label, d.source, ", ".join(d.values))
    for name in catalogue.intersection_names:
        table.add_row(name, "intersection", "", "")
    table_console().print(table)
    console.print(f"from {', '.join(catalogue.files)}")
