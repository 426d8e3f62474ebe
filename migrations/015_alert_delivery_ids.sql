-- Delivery ids unique across deployments: a UUID per delivery, i.e. per alert, channel and stage (initial or
-- escalation), drawn by the application (uuid4) at the delivery's first attempt and kept by its retries. It is sent
-- as the webhook's X-Fairness-Delivery header and the body's delivery_id; an alert id, which restarts at 1 in every
-- database, is not.
ALTER TABLE fairness_alert_deliveries ADD COLUMN IF NOT EXISTS delivery_id UUID;

-- Attempts recorded before this migration: one new id per delivery, shared by its attempts.
UPDATE fairness_alert_deliveries d
SET delivery_id = ids.delivery_id
FROM (
    SELECT alert_id, channel, escalation, gen_random_uuid() AS delivery_id
    FROM fairness_alert_deliveries
    WHERE delivery_id IS NULL
    GROUP BY alert_id, channel, escalation
) ids
WHERE d.delivery_id IS NULL
  AND (d.alert_id, d.channel, d.escalation) = (ids.alert_id, ids.channel, ids.escalation);

ALTER TABLE fairness_alert_deliveries ALTER COLUMN delivery_id SET NOT NULL;

-- What a receiver reports back is a delivery id: find its attempts (and alert) from it.
CREATE INDEX IF NOT EXISTS idx_fairness_alert_deliveries_delivery_id ON fairness_alert_deliveries (delivery_id);

COMMENT ON COLUMN fairness_alert_deliveries.delivery_id IS
    'UUID of the delivery (alert, channel, stage): the same for its retries, unique across databases';
