-- 0157_invoices_unpaid.sql - unpaid invoices by due date (issue 21): forecast_renewals marks a
-- renewal payment_overdue when an invoice of its contract is unpaid past its due date; the set of
-- such contracts was a scan of every invoice per call (all of them are eventually paid: ~17 %
-- unpaid at 10,000 accounts). A partial index: only unpaid rows, read by due date.
CREATE INDEX invoices_unpaid_due_idx ON invoices (due_on, contract_id) WHERE paid_on IS NULL;
