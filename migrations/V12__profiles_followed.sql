-- Profile changes followed: drift-check compares each confirmed user's verified email, name
-- and handle in Cognito with the row, reports a difference as `profile_changed`, and in
-- remediate mode updates those three columns (and no other) from Cognito.
ALTER TABLE drift_findings DROP CONSTRAINT drift_findings_kind_check;
ALTER TABLE drift_findings ADD CONSTRAINT drift_findings_kind_check CHECK (kind IN (
    'missing', 'changed', 'unexpected', 'allowed', 'missing_user', 'orphan_user',
    'unwritable_user', 'expired', 'profile_changed'));
GRANT UPDATE (display_name, email, handle) ON users TO db_sync_drift_check;
