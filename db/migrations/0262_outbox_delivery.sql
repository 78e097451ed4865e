-- 0262_outbox_delivery.sql - what the monitor process records while delivering the outbox
-- (db/functions/outbox/delivery.sql, docs/operations/integrations.md).
--   sending_by: host:pid of the process holding the row ('sending' until next_attempt_at, its lease)
--   last_status: HTTP status of the last attempt (NULL: no answer - timeout, connection error)
ALTER TABLE outbox ADD COLUMN sending_by text,
                   ADD COLUMN last_status integer,
                   ADD COLUMN last_attempt_at timestamptz;
CREATE INDEX outbox_channel_due_idx ON outbox (channel, next_attempt_at) WHERE state IN ('queued', 'failed', 'sending');
