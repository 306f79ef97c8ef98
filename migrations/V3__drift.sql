-- drift-check's record: one row per run, one per finding, and the operator's kill switch.
CREATE TABLE drift_runs (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    trigger     text        NOT NULL,
    mode        text        NOT NULL CHECK (mode IN ('report', 'remediate')),
    scope       text        NOT NULL,
    status      text        NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'complete', 'partial', 'failed')),
    counts      jsonb       NOT NULL DEFAULT '{}',
    error       text,
    request_id  text
);

CREATE TABLE drift_findings (
    id       bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id   uuid        NOT NULL REFERENCES drift_runs (id),
    kind     text        NOT NULL CHECK (kind IN ('missing', 'changed', 'unexpected', 'missing_user', 'orphan_user')),
    resource text        NOT NULL,
    desired  jsonb,
    actual   jsonb,
    action   text        NOT NULL,
    at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX drift_findings_run ON drift_findings (run_id);

-- The kill switch: `UPDATE drift_settings SET remediation_paused = true;` stops every
-- remediating run from changing anything (it still reports) until set back to false.
CREATE TABLE drift_settings (
    singleton          boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    remediation_paused boolean     NOT NULL DEFAULT false,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
INSERT INTO drift_settings DEFAULT VALUES;
