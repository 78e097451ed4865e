-- 0270_outbox_approval.sql - human approval of outbound messages (review_outbound_messages,
-- issue 24; docs/operations/scorecards.md "Approval of outbound messages").
--
-- A channel whose integrations row has settings.require_approval = true queues new messages in
-- state 'pending_approval' (csmcp.outbox_enqueue): the monitor never claims them
-- (csmcp.outbox_claim takes queued/failed/sending rows only). A reviewer approves ('queued': the
-- monitor delivers it), rejects ('rejected': never sent) or edits it first (the payload is
-- replaced, the original kept in original_payload; it stays pending until approved).
--   created_by: the principal of the tool call that queued the message (when the caller set the
--               transaction setting csmcp.actor), else NULL; source_tool is the tool itself
--   reviewed_by/reviewed_at/review_reason: the approval or rejection
--   edited_by/edited_at/original_payload: the last edit and the payload as first queued
ALTER TABLE outbox DROP CONSTRAINT IF EXISTS outbox_state_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_state_check
    CHECK (state IN ('queued', 'sending', 'sent', 'failed', 'dead', 'pending_approval', 'rejected'));
ALTER TABLE outbox ADD COLUMN created_by text,
                   ADD COLUMN reviewed_by text,
                   ADD COLUMN reviewed_at timestamptz,
                   ADD COLUMN review_reason text,
                   ADD COLUMN edited_by text,
                   ADD COLUMN edited_at timestamptz,
                   ADD COLUMN original_payload jsonb;
CREATE INDEX outbox_pending_idx ON outbox (created_at, id) WHERE state = 'pending_approval';
