-- Developer access that lapses unless refreshed. Each managed rule lives until expires_at;
-- every request that applies or confirms it (sg-ip-update's applied and unchanged) renews it
-- by its lifetime: the row's own, else drift_settings.rule_lifetime. drift-check revokes a
-- rule past it (remediate mode; report mode reports it), keeps the row with status 'expired'
-- and writes an audit record; the developer's next request opens it again.
ALTER TABLE drift_settings
    ADD COLUMN rule_lifetime interval NOT NULL DEFAULT interval '12 hours'
        CHECK (rule_lifetime >= interval '5 minutes');
ALTER TABLE managed_ingress_rules
    ADD COLUMN lifetime interval CHECK (lifetime >= interval '5 minutes'),
    ADD COLUMN expires_at timestamptz;
ALTER TABLE managed_ingress_rules DROP CONSTRAINT managed_ingress_rules_status_check;
ALTER TABLE managed_ingress_rules ADD CONSTRAINT managed_ingress_rules_status_check
    CHECK (status IN ('pending', 'applied', 'failed', 'expired'));
-- The rules open today lapse one lifetime from now unless their developers refresh them.
UPDATE managed_ingress_rules
SET expires_at = now() + coalesce(lifetime, (SELECT rule_lifetime FROM drift_settings), interval '12 hours')
WHERE status = 'applied';

ALTER TABLE ip_update_audit DROP CONSTRAINT ip_update_audit_outcome_check;
ALTER TABLE ip_update_audit ADD CONSTRAINT ip_update_audit_outcome_check CHECK (outcome IN (
    'applied', 'unchanged', 'stale', 'failed',
    'refused_unknown_owner', 'refused_invalid_ip', 'refused_invalid_request',
    'refused_unauthorized', 'busy', 'expired'));

ALTER TABLE drift_findings DROP CONSTRAINT drift_findings_kind_check;
ALTER TABLE drift_findings ADD CONSTRAINT drift_findings_kind_check CHECK (kind IN (
    'missing', 'changed', 'unexpected', 'allowed', 'missing_user', 'orphan_user',
    'unwritable_user', 'expired'));

-- sg-ip-update renews by the default lifetime.
GRANT SELECT ON drift_settings TO db_sync_sg_ip_update;
