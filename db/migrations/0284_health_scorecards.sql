-- 0284: versioned health scorecards (manage_health_scorecards, issue 24). Every change of a
-- scorecard's definition is a new version (the old row kept, status superseded); a stored score
-- names the scorecard version that produced it (NULL: the default model).
CREATE SEQUENCE health_scorecard_seq;
CREATE TABLE health_scorecards (
    scorecard_id         text NOT NULL CHECK (scorecard_id ~ '^SC-[0-9]+$'),
    version              integer NOT NULL CHECK (version >= 1),
    name                 text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    weights              jsonb NOT NULL,
    criteria             jsonb NOT NULL DEFAULT '{}',
    priority             integer NOT NULL DEFAULT 100 CHECK (priority BETWEEN 1 AND 10000),
    missing_input_policy text NOT NULL DEFAULT 'neutral' CHECK (missing_input_policy IN ('neutral', 'redistribute')),
    grading              jsonb NOT NULL,
    status               text NOT NULL CHECK (status IN ('active', 'inactive', 'archived', 'superseded')),
    created_by           text NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scorecard_id, version)
);
CREATE UNIQUE INDEX health_scorecards_current ON health_scorecards (scorecard_id) WHERE status <> 'superseded';
CREATE INDEX health_scorecards_active ON health_scorecards (priority, scorecard_id) WHERE status = 'active';
ALTER TABLE health_scores ADD COLUMN scorecard_id text, ADD COLUMN scorecard_version integer;
