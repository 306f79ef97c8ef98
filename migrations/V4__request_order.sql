-- When the newest request a row has taken was sent (EventBridge's event time, or the time a
-- direct invocation arrived). A request older than that is stale: a late retry of an earlier
-- event must not move the rule back to an address the developer has since left.
ALTER TABLE managed_ingress_rules ADD COLUMN last_request_at timestamptz;

ALTER TABLE ip_update_audit DROP CONSTRAINT ip_update_audit_outcome_check;
ALTER TABLE ip_update_audit ADD CONSTRAINT ip_update_audit_outcome_check CHECK (outcome IN (
    'applied', 'unchanged', 'stale', 'failed',
    'refused_unknown_owner', 'refused_invalid_ip', 'refused_invalid_request'));
