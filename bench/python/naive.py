"""The trigger a team would otherwise deploy, written as the original was (with its argument
bug fixed, so it stores rows): connect on every invocation, INSERT, commit, close."""
import os

import psycopg2

SQL = (
    "INSERT INTO users (cognito_user_id, email, display_name, handle) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (cognito_user_id) DO NOTHING"
)


def lambda_handler(event, context):
    attrs = event["request"]["userAttributes"]
    handle = attrs.get("preferred_username") or event["userName"]
    conn = psycopg2.connect(os.environ["DATABASE_URL"])
    try:
        with conn.cursor() as cur:
            cur.execute(SQL, (attrs["sub"], attrs["email"], attrs.get("name") or handle, handle))
        conn.commit()
    finally:
        conn.close()
    return event
