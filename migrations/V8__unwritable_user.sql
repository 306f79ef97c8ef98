-- A confirmed Cognito user whose row cannot be written (a handle the table refuses, an email
-- that is not verified, any other per-user failure) is a finding of its own kind, with the
-- reason, so that one such user never holds back the rest of a pass.
ALTER TABLE drift_findings DROP CONSTRAINT drift_findings_kind_check;
ALTER TABLE drift_findings ADD CONSTRAINT drift_findings_kind_check CHECK (kind IN (
    'missing', 'changed', 'unexpected', 'allowed', 'missing_user', 'orphan_user', 'unwritable_user'));
