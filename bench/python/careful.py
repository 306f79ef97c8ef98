"""The careful Python variant: one module-level connection, reused while it lives."""
import os

import psycopg2

SQL = (
    "INSERT INTO users (cognito_user_id, email, display_name, handle) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (cognito_user_id) DO NOTHING"
)
conn = psycopg2.connect(os.environ["DATABASE_URL"])


def lambda_handler(event, context):
    global conn
    if conn.closed:
        conn = psycopg2.connect(os.environ["DATABASE_URL"])
    attrs = event["request"]["userAttributes"]
    handle = attrs.get("preferred_username") or event["userName"]
    with conn.cursor() as cur:
        cur.execute(SQL, (attrs["sub"], attrs["email"], attrs.get("name") or handle, handle))
    conn.commit()
    return event
