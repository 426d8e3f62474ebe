"""Run tags the project reads and writes (Dagster's names for a run's partition range)."""

DAGSTER_RANGE_START_TAG = "dagster/asset_partition_range_start"
DAGSTER_RANGE_END_TAG = "dagster/asset_partition_range_end"
