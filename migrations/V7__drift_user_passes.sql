-- A pass over the Cognito pool may span many drift-check runs: ListUsers is paced well under
-- Cognito's account-wide quota, so a large pool takes longer than one invocation. The pass row
-- holds where the next run continues (the pagination token of the next unread page) and the
-- progress; the subs the pass has seen are kept in drift_pass_subs (not in the function's
-- memory), so orphans come from one anti-join once the pass has read every page.
CREATE TABLE drift_user_passes (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_pool_id  text        NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    -- open: runs continue it; complete: every page read and orphans reported; restarted:
    -- Cognito refused its token (expired), a new pass began from the first page.
    status        text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'complete', 'restarted')),
    -- The token of the next page to read; NULL: the first page.
    next_token    text,
    pages_read    bigint      NOT NULL DEFAULT 0,
    users_seen    bigint      NOT NULL DEFAULT 0,
    -- Runs that held the pass (claimed it), including the one that finished it.
    runs          integer     NOT NULL DEFAULT 0,
    -- The run that may write to the pass, until its invocation's deadline: a lease, so a run
    -- that died holding it blocks the pass no longer than Lambda would have let it run. Every
    -- write checks claimed_by, so a run whose lease was taken over writes nothing more.
    claimed_by    uuid        REFERENCES drift_runs (id),
    claimed_until timestamptz,
    CONSTRAINT drift_user_passes_finished CHECK ((status = 'open') = (finished_at IS NULL))
);
CREATE UNIQUE INDEX drift_user_passes_one_open ON drift_user_passes (user_pool_id) WHERE status = 'open';

CREATE TABLE drift_pass_subs (
    pass_id bigint NOT NULL REFERENCES drift_user_passes (id) ON DELETE CASCADE,
    sub     text   NOT NULL,
    PRIMARY KEY (pass_id, sub)
);

-- Each run's share of its pass.
ALTER TABLE drift_runs
    ADD COLUMN pass_id    bigint REFERENCES drift_user_passes (id),
    ADD COLUMN pages_read bigint,
    ADD COLUMN users_seen bigint;
CREATE INDEX drift_runs_pass ON drift_runs (pass_id) WHERE pass_id IS NOT NULL;
