"""The ``fairness-pipeline`` command."""

from fairness_pipeline.catalogue import CatalogueError, load_catalogue

try:  # modules below read the dimension catalogue as they load: a broken user file is a one-line usage error
    load_catalogue()
except CatalogueError as exc:
    from fairness_pipeline.cli.output import EXIT_USAGE, print_error

    print_error(str(exc))
    raise SystemExit(EXIT_USAGE) from None
