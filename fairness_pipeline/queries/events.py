"""Read queries on ``selection_events``."""

STORED_SUMMARY = """
SELECT tenant_id, event_type, count(*) AS events, count(DISTINCT candidate_id) AS candidates,
       min(timestamp)::date AS first_day, max(timestamp)::date AS last_day
FROM selection_events
GROUP BY tenant_id, event_type
ORDER BY tenant_id, array_position(ARRAY['shown', 'clicked', 'shortlisted', 'contacted', 'interviewed', 'hired'],
                                   event_type::text)
"""
