-- drift-check's users half without Cognito in the VPC (issue 36). A pool with a domain cannot be
-- reached through a Cognito interface endpoint, and a VPC without NAT reaches nothing else: so
-- the listing runs outside the VPC (drift-check's lister) and hands the pages to drift-check in
-- chunks, each one synchronous Lambda invocation under its 6 MB payload limit. The chunks are
-- staged here, per listing, and compared only once the lister says the listing is complete
-- and the chunks it counted are all here: a listing that broke off is never read as "these
-- users vanished".
CREATE TABLE public.drift_listings (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_pool_id text        NOT NULL,
    -- When the lister began: rows created after it (less a margin) may be missing from the
    -- listing without being orphans (the pass's started_at is set from it).
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    -- staging: chunks arrive; complete: every chunk counted is here, compared by the run in
    -- compared_by; broken_off: the lister could not finish (or its counts did not match), and
    -- nothing of it was compared.
    status       text        NOT NULL DEFAULT 'staging'
                             CHECK (status IN ('staging', 'complete', 'broken_off')),
    chunks       integer     NOT NULL DEFAULT 0 CHECK (chunks >= 0),
    users        bigint      NOT NULL DEFAULT 0 CHECK (users >= 0),
    reason       text        CHECK (char_length(reason) <= 1000),
    -- A listing the lister ran out of time for: Cognito's token of the next unread page. The
    -- lister's next run continues from it (every page before it is staged).
    next_token   text        CHECK (char_length(next_token) <= 8192),
    compared_by  uuid        REFERENCES public.drift_runs (id),
    CONSTRAINT drift_listings_finished CHECK ((status = 'staging') = (finished_at IS NULL))
);
CREATE INDEX drift_listings_pool ON public.drift_listings (user_pool_id, started_at);

-- One chunk: whole users, in the order Cognito listed them. Never updated: a chunk sent again
-- (the lister retried a hand-over that had in fact arrived) is kept as first received.
CREATE TABLE public.drift_listing_chunks (
    listing_id uuid    NOT NULL REFERENCES public.drift_listings (id) ON DELETE CASCADE,
    seq        integer NOT NULL CHECK (seq >= 0),
    users      jsonb   NOT NULL CHECK (jsonb_typeof(users) = 'array'),
    PRIMARY KEY (listing_id, seq)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON public.drift_listings TO db_sync_drift_check;
GRANT SELECT, INSERT, DELETE ON public.drift_listing_chunks TO db_sync_drift_check;
