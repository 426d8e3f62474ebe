"""SQL of the command line's tenant checks: does a tenant exist, and which tenants do."""

TENANT_EXISTS = """
SELECT EXISTS (SELECT 1 FROM selection_events WHERE tenant_id = %(tenant_id)s)
    OR EXISTS (SELECT 1 FROM fairness_reports WHERE tenant_id = %(tenant_id)s)
    OR EXISTS (SELECT 1 FROM fairness_alerts WHERE tenant_id = %(tenant_id)s)
"""

# The distinct tenants of selection_events by a skip scan of its (tenant_id, timestamp) index: one index probe per
# tenant instead of reading every event.
TENANTS = """
WITH RECURSIVE event_tenants AS (
    (SELECT tenant_id FROM selection_events ORDER BY tenant_id LIMIT 1)
    UNION ALL
    SELECT (SELECT e.tenant_id FROM selection_events e WHERE e.tenant_id > t.tenant_id ORDER BY e.tenant_id LIMIT 1)
    FROM event_tenants t
    WHERE t.tenant_id IS NOT NULL
)
SELECT tenant_id FROM event_tenants WHERE tenant_id IS NOT NULL
UNION SELECT tenant_id FROM fairness_reports
UNION SELECT tenant_id FROM fairness_alerts
ORDER BY 1
"""
