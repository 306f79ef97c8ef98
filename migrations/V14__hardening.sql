-- What a job role could still do beyond its statements (issue 37, items 4, 7 and 10).
--
-- 1. Our functions read only our tables. A table name a function leaves unqualified is looked
--    up on the caller's search_path, where the session's temporary schema comes first: a member
--    of db_sync_drift_check that made `CREATE TEMP TABLE drift_settings` with a retention of 0
--    days had the audit's retention trigger read it, and deleted rows inside the retention.
--    Every function now runs with `search_path = pg_catalog, public, pg_temp` (pg_temp is
--    searched first for tables unless it is named, so it is named, last) and names each table
--    with its schema. `job_roles::every_function_the_migrations_define_pins_its_search_path`
--    holds every later function to the same.
ALTER FUNCTION public.ip_update_audit_append_only() SET search_path = pg_catalog, public, pg_temp;

CREATE OR REPLACE FUNCTION public.ip_update_audit_only_expired() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF OLD.at >= pg_catalog.now() - pg_catalog.make_interval(days => coalesce(
            (SELECT s.audit_retention_days FROM public.drift_settings s), 36500)) THEN
        RAISE EXCEPTION 'ip_update_audit is append-only: row % is inside the retention', OLD.id;
    END IF;
    RETURN OLD;
END;
$$;

-- 2. No job makes anything: not a temporary table (no function uses one), not an object in
--    public, not a schema. Revoked from PUBLIC, which every role is in (the logins made later
--    too), and from the job roles; the database's and the schema's owner keep theirs. Only
--    their owner (or a superuser) may revoke them, so a migrations login that is not the
--    owner stops here with the statement to run.
DO $$
DECLARE
    r text;
BEGIN
    EXECUTE format(
        'REVOKE CREATE, TEMPORARY ON DATABASE %I FROM PUBLIC, db_sync_post_confirmation, '
        'db_sync_pre_sign_up, db_sync_sg_ip_update, db_sync_drift_check', current_database());
    REVOKE CREATE ON SCHEMA public FROM PUBLIC, db_sync_post_confirmation, db_sync_pre_sign_up,
        db_sync_sg_ip_update, db_sync_drift_check;
    FOREACH r IN ARRAY ARRAY['public', 'db_sync_post_confirmation', 'db_sync_pre_sign_up',
                             'db_sync_sg_ip_update', 'db_sync_drift_check'] LOOP
        IF has_database_privilege(r, current_database(), 'TEMPORARY')
                OR has_schema_privilege(r, 'public', 'CREATE') THEN
            RAISE EXCEPTION '% may still make temporary tables or objects in public', r
                USING HINT = format(
                    'run the migrations as the owner of database %I and schema public, or have '
                    'the owners run: REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC; '
                    'REVOKE CREATE ON SCHEMA public FROM PUBLIC',
                    current_database(), current_database());
        END IF;
    END LOOP;
END
$$;

-- 3. A job moves and marks a rule; it never changes who may move it (principal,
--    allow_unverified), whether private addresses are allowed, its ports, protocol, owner,
--    group or lifetime. UPDATE on exactly the columns each job's statements set
--    (ingress::store): sg-ip-update's mark_pending, note_request, mark_applied and
--    mark_failed; drift-check's mark_applied, mark_expired and mark_failed.
REVOKE UPDATE ON public.managed_ingress_rules FROM db_sync_sg_ip_update, db_sync_drift_check;
GRANT UPDATE (cidr, status, aws_rule_id, last_error, updated_at, last_request_at, expires_at)
    ON public.managed_ingress_rules TO db_sync_sg_ip_update;
GRANT UPDATE (status, aws_rule_id, last_error, updated_at, expires_at)
    ON public.managed_ingress_rules TO db_sync_drift_check;

--    Both renew expires_at, so that column is theirs to set, but only to what a renewal
--    sets: at most one lifetime (the row's, else drift_settings.rule_lifetime) from now, never
--    NULL; and sg-ip-update's last_request_at at most ten minutes ahead (it refuses an event
--    over five minutes ahead; a later one would make every request stale). The table's owner,
--    who may drop the trigger anyway, sets both freely (a longer grant: set `lifetime`).
--    STABLE: the trigger reads the settings as the statement it checks read them.
CREATE FUNCTION public.managed_ingress_rules_lifetime_bound() RETURNS trigger
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
    IF pg_catalog.pg_has_role(current_user,
            (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = TG_RELID), 'MEMBER') THEN
        RETURN NEW;
    END IF;
    IF NEW.expires_at IS DISTINCT FROM OLD.expires_at
            AND (NEW.expires_at IS NULL OR NEW.expires_at > pg_catalog.now() + coalesce(
                NEW.lifetime,
                (SELECT s.rule_lifetime FROM public.drift_settings s),
                interval '12 hours')) THEN
        RAISE EXCEPTION 'rule % may lapse at most one lifetime from now, not at %',
            NEW.id, coalesce(NEW.expires_at::text, 'never');
    END IF;
    IF NEW.last_request_at IS DISTINCT FROM OLD.last_request_at
            AND NEW.last_request_at > pg_catalog.now() + interval '10 minutes' THEN
        RAISE EXCEPTION 'rule % took no request from the future (%)', NEW.id, NEW.last_request_at;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER managed_ingress_rules_lifetime_bound
    BEFORE UPDATE OF expires_at, last_request_at ON public.managed_ingress_rules
    FOR EACH ROW EXECUTE FUNCTION public.managed_ingress_rules_lifetime_bound();

-- 4. drift-check's findings are a record it adds to (its code only inserts them), never one it
--    rewrites or deletes.
REVOKE UPDATE, DELETE ON public.drift_findings FROM db_sync_drift_check;
