"""The Python a team following AWS's guidance writes: boto3 fetches the RDS secret at import,
then psycopg2 connects once with sslmode=verify-full against the RDS CA bundle, reused while it
lives. AWS_ENDPOINT_URL points boto3 at the local Secrets Manager, as it does the Rust SDK."""
import json
import os

import boto3
import psycopg2

SQL = (
    "INSERT INTO users (cognito_user_id, email, display_name, handle) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (cognito_user_id) DO NOTHING"
)


def connect():
    secret = json.loads(
        boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["DB_SECRET_ARN"])[
            "SecretString"
        ]
    )
    return psycopg2.connect(
        host=secret["host"],
        port=secret["port"],
        user=secret["username"],
        password=secret["password"],
        dbname=secret["dbname"],
        sslmode="verify-full",
        sslrootcert=os.environ["DB_CA_BUNDLE"],
    )


conn = connect()


def lambda_handler(event, context):
    global conn
    if conn.closed:
        conn = connect()
    attrs = event["request"]["userAttributes"]
    handle = attrs.get("preferred_username") or event["userName"]
    with conn.cursor() as cur:
        cur.execute(SQL, (attrs["sub"], attrs["email"], attrs.get("name") or handle, handle))
    conn.commit()
    return event
