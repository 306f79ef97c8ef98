-- The PreSignUp trigger's role: it asks only whether a handle is taken (compared without
-- case, as the unique index does), so it may read that one column and nothing else.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'db_sync_pre_sign_up') THEN
        BEGIN
            CREATE ROLE db_sync_pre_sign_up NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'the migrations cannot create the group role db_sync_pre_sign_up'
                    USING HINT = 'run them as a user with CREATEROLE (the RDS master user has it), '
                        'or have one run: CREATE ROLE db_sync_pre_sign_up NOLOGIN';
        END;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO db_sync_pre_sign_up;
GRANT SELECT (handle) ON users TO db_sync_pre_sign_up;
