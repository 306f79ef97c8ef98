-- A database role per job, so that each function runs with the statements it needs and no
-- more (the pattern of pgSTAC's pgstac_admin / pgstac_ingest / pgstac_read):
--
--   the migrations' login (the schema owner)  owns every table; the only one that may alter them
--   db_sync_post_confirmation                 inserts sign-ups into users
--   db_sync_sg_ip_update                      moves managed rules, appends to the audit
--   db_sync_drift_check                       reads the desired state, records its runs and
--                                             findings, backfills users, expires old audit rows
--
-- These are group roles (NOLOGIN). An operator makes each function's login user a member
-- (see the deploy guide); under IAM authentication that user is granted rds_iam as well.
-- No group owns anything, so none may ALTER a table, DROP or disable a trigger (the audit's
-- append-only triggers among them), or grant its rights on.
--
-- Roles belong to the whole server, not this database: an existing role of the same name is
-- used as it is (two databases on one server share the groups; their grants stay per
-- database). Creating one needs CREATEROLE, which the RDS master user has.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['db_sync_post_confirmation', 'db_sync_sg_ip_update', 'db_sync_drift_check'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION
                -- Another database's migration made it just now.
                WHEN duplicate_object OR unique_violation THEN NULL;
                WHEN insufficient_privilege THEN
                    RAISE EXCEPTION 'the migrations cannot create the group role %', r
                        USING HINT = format(
                            'run them as a user with CREATEROLE (the RDS master user has it), '
                            'or have one run: CREATE ROLE %I NOLOGIN', r);
            END;
        END IF;
    END LOOP;
END
$$;

GRANT USAGE ON SCHEMA public TO db_sync_post_confirmation, db_sync_sg_ip_update, db_sync_drift_check;
-- The schema guard: each function asks which migrations are applied.
GRANT SELECT ON refinery_schema_history
    TO db_sync_post_confirmation, db_sync_sg_ip_update, db_sync_drift_check;

-- post-confirmation: the sign-up's row, and the one it finds when the row is already there.
GRANT SELECT, INSERT ON users TO db_sync_post_confirmation;

-- sg-ip-update: the caller's row (moved, marked), and an audit record per request.
GRANT SELECT, UPDATE ON managed_ingress_rules TO db_sync_sg_ip_update;
GRANT INSERT ON ip_update_audit TO db_sync_sg_ip_update;

-- drift-check: everything it compares, its own records, the backfill, the audit's retention
-- (the row trigger still refuses a row inside it).
GRANT SELECT, INSERT ON users TO db_sync_drift_check;
GRANT SELECT, UPDATE ON managed_ingress_rules TO db_sync_drift_check;
GRANT SELECT ON drift_allowed_rules, drift_settings TO db_sync_drift_check;
GRANT SELECT, INSERT, UPDATE ON drift_runs, drift_findings, drift_user_passes TO db_sync_drift_check;
GRANT SELECT, INSERT, DELETE ON drift_pass_subs TO db_sync_drift_check;
GRANT SELECT, INSERT, DELETE ON ip_update_audit TO db_sync_drift_check;
