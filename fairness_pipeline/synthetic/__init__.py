"""Deterministic synthetic selection events: a recruiting funnel with optional planted bias.

Model, per tenant and UTC day:

- Each tenant has a fixed pool of candidates whose dimension values are drawn once (``GROUP_PROPORTIONS``; a share
  ``unknown_share`` of candidates has no value, per dimension). Dimensions are independent of each other and of
  scores, so without planted bias every group has the same expected selection rates. The candidates' self-identified
  attributes (every attribute dimension of the catalogue: ``ATTRIBUTE_PROPORTIONS``, a share
  ``attribute_unknown_share`` declined or blank) are drawn from random streams of their own, so the events are the
  same with or without them; ``write_attributes`` writes them as a self-identification file for every candidate.
  Every planted effect below may name any catalogue dimension, an event proxy or an attribute.
- Recruiters (``user_id_hash`` = sha256 of a synthetic user name) run searches; their number per day is Poisson
  around the volume that yields ``events_per_day`` events, shaped by ``WEEKDAY_WEIGHTS``, at times of day spread
  around a tenant-specific peak hour. Each search shows a slate of ``slate_size`` distinct candidates
  (ranks 1..n; scores fall with rank, plus noise, 4 decimals in [0, 1]).
- Funnel: shown -> clicked with ``CLICK_PROB_TOP * rank ** -CLICK_RANK_DECAY``, then each later stage with the
  conditional probability in ``STAGE_PROBS``, times the factors of matching ``PlantedBias`` entries (capped at 1).
  A ``drift`` entry (also a ``PlantedBias``) is a bias that grows: its factor goes in a straight line from 1 on the
  first day to ``factor`` on the last day, so the group's impact ratio sinks week after week.
  A later stage happens ``STAGE_LAG_SECONDS`` after the previous one and repeats the search_id, rank, score and
  dimensions of the shown event.
- Optional planted ranking effects, applied to each slate in this order (none of them is used by default):
  ``slate_concentration`` (``ConcentrationBias``): a share of searches draws exactly ceil(purity * slate_size)
  candidates from one group and the rest from outside it, in random order; ``score_bias`` (``ScoreBias``): the
  group's scores are shifted by a constant (clipped to [0, 1]) and the slate is re-ordered by score, as a ranker
  that sorts by its score would; ``rank_bias`` (``RankBias``): the group's candidates are pushed down N positions
  (each sorts as if at position + N, after the candidates already there) and keep their scores, so they score the
  same as before but are ranked lower. Ranks are then 1..n in the new order and clicks follow the new ranks. These
  draws come from their own generator, so the other draws are the same as without them.
- Events are emitted in timestamp order, one DataFrame per (day, tenant) holding the events whose timestamp falls
  on that day. Events that would fall on or after ``start + days`` (late stages of the last days' searches) are
  dropped, like a snapshot taken at the end of the range: late stages near the end are censored.

Everything is drawn from numpy generators seeded by ``(seed, tenant, day)``, so the same configuration gives the
same events, byte for byte once written.
"""

from fairness_pipeline.synthetic._attributes import (
    ATTRIBUTE_PROPORTIONS,
    attribute_frames,
    collect_candidates,
    write_attributes,
)
from fairness_pipeline.synthetic._biases import (
    DEFAULT_SLATE_PURITY,
    ConcentrationBias,
    PlantedBias,
    RankBias,
    ScoreBias,
    parse_bias,
    parse_rank_bias,
    parse_score_bias,
    parse_slate_concentration,
)
from fairness_pipeline.synthetic._config import (
    CLICK_PROB_TOP,
    CLICK_RANK_DECAY,
    DEFAULT_POOL_FACTOR,
    DEFAULT_START,
    STAGE_PROBS,
    GeneratorConfig,
    _mean_click_prob,
    expected_events_per_search,
)
from fairness_pipeline.synthetic._frames import write_events
from fairness_pipeline.synthetic._simulator import (
    GROUP_PROPORTIONS,
    SEARCH_HOUR_SD,
    SEARCHES_PER_RECRUITER,
    STAGE_LAG_SECONDS,
    WEEKDAY_WEIGHTS,
    generate_events,
)

__all__ = [
    "ATTRIBUTE_PROPORTIONS",
    "CLICK_PROB_TOP",
    "CLICK_RANK_DECAY",
    "DEFAULT_POOL_FACTOR",
    "DEFAULT_SLATE_PURITY",
    "DEFAULT_START",
    "GROUP_PROPORTIONS",
    "SEARCHES_PER_RECRUITER",
    "SEARCH_HOUR_SD",
    "STAGE_LAG_SECONDS",
    "STAGE_PROBS",
    "WEEKDAY_WEIGHTS",
    "ConcentrationBias",
    "GeneratorConfig",
    "PlantedBias",
    "RankBias",
    "ScoreBias",
    "_mean_click_prob",
    "attribute_frames",
    "collect_candidates",
    "expected_events_per_search",
    "generate_events",
    "parse_bias",
    "parse_rank_bias",
    "parse_score_bias",
    "parse_slate_concentration",
    "write_attributes",
    "write_events",
]
