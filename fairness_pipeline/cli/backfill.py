"""A range run from the command line, recorded in the Dagster instance as an asset backfill.

With a Dagster daemon running, ``fairness-pipeline run`` submits a real asset backfill (``submit_backfill``) that the
daemon launches and the command follows. Without one, it executes its runs here; so that the UI's Backfills tab still
lists the range with each asset's partitions (requested, materialised, failed), the backfill is registered before the
first run and its asset-backfill data updated as each run ends. The runs carry the backfill's id tag, so the backfill
page lists them too. While it runs the backfill is ``REQUESTED`` (shown "In progress") with its whole target marked
requested from the start: a daemon that is running (``fairness-pipeline ui``) then has nothing left to launch for it
and only follows the runs made here, instead of launching the same partitions a second time.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import date

BACKFILL_ID_TAG = "dagster/backfill"
LAUNCHED_BY_TAG = "fairness/launched_by"


Target = tuple[Iterable[str], date, date, list[str]]
"""Asset names, first day, last day and the tenants of the tenant-day assets among them."""


def range_subset(asset_graph, names: Iterable[str], first_day: date, last_day: date, tenants: list[str]):
    """The ``AssetGraphSubset`` of the assets ``names`` over the days ``first_day .. last_day`` (``tenants``' days of
    the tenant-day assets)."""
    import dagster as dg

    from fairness_pipeline.defs import partitions

    keys = [dg.AssetKey(name) for name in names]
    return partitions.range_subset(asset_graph, keys, first_day, last_day, tenants)


def union(subsets: Iterable):
    """The union of ``AssetGraphSubset``s."""
    from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset

    target = AssetGraphSubset()
    for subset in subsets:
        target |= subset
    return target


def submit_backfill(instance, asset_graph, targets: Sequence[Target], title: str, run_config):
    """Submit an asset backfill of ``targets`` (:data:`Target`) for the daemon to run with
    ``run_config`` (one config for all its runs: a run ignores the config of assets it does not hold); its id."""
    from dagster._core.execution.backfill import PartitionBackfill
    from dagster._core.utils import make_new_backfill_id

    backfill = PartitionBackfill.from_asset_graph_subset(
        backfill_id=make_new_backfill_id(),
        backfill_timestamp=time.time(),
        tags={LAUNCHED_BY_TAG: "fairness-pipeline run"},
        dynamic_partitions_store=instance,
        asset_graph_subset=union(range_subset(asset_graph, *target) for target in targets),
        title=title,
        description="Submitted by `fairness-pipeline run` and run by the Dagster daemon.",
        run_config=run_config,
    )
    instance.add_backfill(backfill)
    return backfill.backfill_id


class LocalBackfill:
    """The backfill record of a range executed in this process: target, then requested, materialised or failed."""

    def __init__(self, instance, asset_graph, targets: Sequence[Target], title: str):
        """``targets``: (:data:`Target`) for each run of the range, in order."""
        from dagster._core.execution.asset_backfill import AssetBackfillData
        from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
        from dagster._core.utils import make_new_backfill_id

        self._instance, self._asset_graph = instance, asset_graph
        self._subsets = [range_subset(asset_graph, *target) for target in targets]
        target = union(self._subsets)
        started = time.time()
        data = AssetBackfillData.from_asset_graph_subset(
            asset_graph_subset=target, dynamic_partitions_store=instance, backfill_start_timestamp=started
        ).replace_requested_subset(target)
        self.backfill_id = make_new_backfill_id()
        self._backfill = PartitionBackfill(
            backfill_id=self.backfill_id,
            status=BulkActionStatus.REQUESTED,
            from_failure=False,
            tags={LAUNCHED_BY_TAG: "fairness-pipeline run"},
            backfill_timestamp=started,
            asset_selection=list(target.asset_keys),
            asset_backfill_data=data,
            title=title,
            description="Executed by `fairness-pipeline run` in its own process (no daemon needed).",
        )
        instance.add_backfill(self._backfill)

    def _update(self, **changes) -> None:
        data = self._backfill.get_asset_backfill_data(self._asset_graph)._replace(**changes)
        self._backfill = self._backfill.with_asset_backfill_data(data, self._instance, self._asset_graph)
        self._instance.update_backfill(self._backfill)

    def run_ended(self, index: int, success: bool, downstream: bool = True) -> None:
        """Record run ``index``'s end; a failed run fails the later runs too when ``downstream`` (they read what it
        writes), otherwise its own partitions only."""
        data = self._backfill.get_asset_backfill_data(self._asset_graph)
        if success:
            self._update(materialized_subset=data.materialized_subset | self._subsets[index])
        else:
            failed = self._subsets[index]
            for later in self._subsets[index + 1 :] if downstream else ():
                failed |= later
            self._update(failed_and_downstream_subset=data.failed_and_downstream_subset | failed)

    def close(self, success: bool) -> None:
        from dagster._core.execution.backfill import BulkActionStatus

        status = BulkActionStatus.COMPLETED_SUCCESS if success else BulkActionStatus.COMPLETED_FAILED
        self._backfill = self._backfill.with_status(status).with_end_timestamp(time.time())
        self._instance.update_backfill(self._backfill)
