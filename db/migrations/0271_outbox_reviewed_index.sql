-- 0271: review_outbound_messages lists reviewed messages (state approved / rejected) oldest first;
-- the outbox keeps every sent row, so this must not scan it (pending ones: outbox_pending_idx, 0270).
CREATE INDEX outbox_reviewed_idx ON outbox (created_at, id) WHERE reviewed_at IS NOT NULL;
