-- 0172_forecast_inputs.sql - per active contract, what forecast_renewals reads (issue 21,
-- session 6): every active contract of an account that is not churned, with the account's name
-- and computed health score, whether the account has an open or in-progress escalation, and the
-- earliest due date of the contract's unpaid invoices. The tool joined contracts x accounts (a
-- scan of every account: 187 MB at 100,000 accounts) and probed invoices and escalations per
-- contract on every call. "Overdue" (an unpaid invoice due before today) depends on the day, so
-- the due date is stored and compared at read time; a manual health override expires with time
-- and is joined at read time too. Kept in the writing transaction by statement triggers on
-- accounts, contracts, invoices and escalations (db/functions/expansion/rollups.sql), which fill
-- it when it is still empty. No foreign keys: a row goes when its contract stops qualifying or
-- is deleted (the triggers of the cascade remove it).
CREATE TABLE forecast_inputs (
    contract_id text PRIMARY KEY,
    client_id text NOT NULL,
    client_name text NOT NULL,
    end_date date NOT NULL,
    contract_value numeric(14,2) NOT NULL,
    health_score integer,      -- accounts.health_score (the computed score)
    escalated boolean NOT NULL,
    unpaid_due date            -- min(due_on) of the contract's unpaid invoices; NULL: none
);
CREATE INDEX forecast_inputs_end_idx ON forecast_inputs (end_date, client_id);
CREATE INDEX forecast_inputs_client_idx ON forecast_inputs (client_id);
