-- A confirmed Cognito user whose row cannot be written (a handle the table refuses, an email
-- that is not verified, any other per-user failure) is a finding of its own kind, with the
-- reason, so that one such user never holds back the rest of a pass.
ALTER TABLE drift_findings DROP CONSTRAINT drift_findings_kind_check;
ALTER TABLE drift_findings ADD CONSTRAINT drift_findings_kind_check CHECK (kind IN (
    'missing', 'changed', 'unexpected', 'allowed', 'missing_user', 'orphan_user', 'unwritable_user'));

-- An allowlist entry pins what it allows: the source, the protocol and the ports (and the rule
-- id, when given). A rule widened by hand (the bastion opened to 0.0.0.0/0, or to every port) no
-- longer matches its entry and is drift. Entries written before this pin nothing more than a
-- CIDR or an id: they keep no rule any more; the rule they name is reported as drift and left
-- in place (never revoked) until the entry is pinned or replaced. New entries must pin.
ALTER TABLE drift_allowed_rules
    ADD COLUMN ip_protocol text CHECK (ip_protocol ~ '^(-1|tcp|udp|icmp|icmpv6|[0-9]{1,3})$'),
    ADD COLUMN from_port integer CHECK (from_port BETWEEN -1 AND 65535),
    ADD COLUMN to_port integer CHECK (to_port BETWEEN -1 AND 65535);
ALTER TABLE drift_allowed_rules ADD CONSTRAINT drift_allowed_rules_pins_a_rule
    CHECK (cidr IS NOT NULL AND ip_protocol IS NOT NULL AND from_port IS NOT NULL AND to_port IS NOT NULL)
    NOT VALID;

-- Every request leaves a record: one that gave up waiting for the owner's lock too.
ALTER TABLE ip_update_audit DROP CONSTRAINT ip_update_audit_outcome_check;
ALTER TABLE ip_update_audit ADD CONSTRAINT ip_update_audit_outcome_check CHECK (outcome IN (
    'applied', 'unchanged', 'stale', 'failed',
    'refused_unknown_owner', 'refused_invalid_ip', 'refused_invalid_request',
    'refused_unauthorized', 'busy'));

-- The audit keeps a stated retention (drift_settings.audit_retention_days, 90 days by
-- default, at least 7): drift-check deletes what is older on each scheduled run, so a flood
-- of refused events cannot grow the table without bound. Inside the retention it stays
-- append-only: UPDATE and TRUNCATE are refused as before, and a DELETE of any row younger
-- than the retention is refused, whoever runs it.
ALTER TABLE drift_settings
    ADD COLUMN audit_retention_days integer NOT NULL DEFAULT 90 CHECK (audit_retention_days >= 7);
CREATE INDEX ip_update_audit_at ON ip_update_audit (at);
DROP TRIGGER ip_update_audit_append_only ON ip_update_audit;
CREATE TRIGGER ip_update_audit_append_only
    BEFORE UPDATE OR TRUNCATE ON ip_update_audit
    FOR EACH STATEMENT EXECUTE FUNCTION ip_update_audit_append_only();
CREATE FUNCTION ip_update_audit_only_expired() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.at >= now() - make_interval(days => coalesce(
            (SELECT audit_retention_days FROM drift_settings), 36500)) THEN
        RAISE EXCEPTION 'ip_update_audit is append-only: row % is inside the retention', OLD.id;
    END IF;
    RETURN OLD;
END;
$$;
CREATE TRIGGER ip_update_audit_only_expired
    BEFORE DELETE ON ip_update_audit
    FOR EACH ROW EXECUTE FUNCTION ip_update_audit_only_expired();
