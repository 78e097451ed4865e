-- 0243_communication_message_run_fk.sql - a workflow's e-mail messages go with its run: deleting a
-- workflow (cascading to its runs) must not leave messages without a source (0242's SET NULL
-- violated email_messages_source_check).
ALTER TABLE email_messages DROP CONSTRAINT IF EXISTS email_messages_workflow_run_id_fkey;
ALTER TABLE email_messages ADD CONSTRAINT email_messages_workflow_run_id_fkey
    FOREIGN KEY (workflow_run_id) REFERENCES workflow_runs ON DELETE CASCADE;
