-- The sign-in guard (issue 38): Cognito's PostAuthentication trigger writes the row a user
-- lacks at sign-in, with post-confirmation's own insert. Its group role may insert a user and
-- read only what that insert reads back: the new row's id (RETURNING), and whose sub or
-- handle a conflict met. It reads no email and changes no row.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'db_sync_sign_in_guard') THEN
        BEGIN
            CREATE ROLE db_sync_sign_in_guard NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'the migrations cannot create the group role db_sync_sign_in_guard'
                    USING HINT = 'run them as a user with CREATEROLE (the RDS master user has it), '
                        'or have one run: CREATE ROLE db_sync_sign_in_guard NOLOGIN';
        END;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO db_sync_sign_in_guard;
-- The schema guard: the insert's transaction asks which migrations are applied.
GRANT SELECT ON public.refinery_schema_history TO db_sync_sign_in_guard;
GRANT INSERT (cognito_user_id, email, display_name, handle) ON public.users TO db_sync_sign_in_guard;
GRANT SELECT (id, cognito_user_id, handle) ON public.users TO db_sync_sign_in_guard;

-- As V14 for the other jobs: no temporary tables, nothing made in public. V14 revoked both
-- from PUBLIC; a grant made to this role by hand would show here.
DO $$
BEGIN
    EXECUTE format('REVOKE CREATE, TEMPORARY ON DATABASE %I FROM db_sync_sign_in_guard',
        current_database());
    REVOKE CREATE ON SCHEMA public FROM db_sync_sign_in_guard;
END
$$;
