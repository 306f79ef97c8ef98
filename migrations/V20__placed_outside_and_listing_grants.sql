-- V17 and V19 as deployed, tightened; migrations are never edited once they have shipped.

-- drift-check reports a row whose rule is placed in a group no longer managed (removed from
-- the parameter before it was drained: no run visits it).
ALTER TABLE public.drift_findings DROP CONSTRAINT drift_findings_kind_check;
ALTER TABLE public.drift_findings ADD CONSTRAINT drift_findings_kind_check CHECK (kind IN (
    'missing', 'changed', 'unexpected', 'allowed', 'missing_user', 'orphan_user',
    'unwritable_user', 'expired', 'profile_changed', 'group_capacity', 'placed_outside'));

-- UPDATE only of the columns the code changes (never the id, the pool or when it began);
-- DELETE only for the retention: a new listing deletes its pool's listings finished more than
-- two weeks ago (their chunks with them), so the table does not grow with every tick.
REVOKE UPDATE ON public.drift_listings FROM db_sync_drift_check;
GRANT UPDATE (status, finished_at, reason, next_token, chunks, users, compared_by)
    ON public.drift_listings TO db_sync_drift_check;
