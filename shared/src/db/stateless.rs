//! Statements that leave nothing behind in the database session, for connections shared through
//! a transaction-pooling proxy (RDS Proxy, PgBouncer): each statement is unnamed (parsed, bound
//! and run in one go, no prepared statement kept on the server), and its timeout is a
//! `SET LOCAL` inside the statement's own transaction, gone at its `COMMIT`.
//!
//! Why `SET LOCAL` and not a client-side deadline with a cancel request (both were measured;
//! `bench/` reports them side by side): on the happy path both are one round trip, because the
//! `BEGIN; SET LOCAL`, the statement and the `COMMIT` are written together before any answer
//! is read; the transaction's own server work measured about 0.1 ms more at the median on
//! loopback. That buys what a client-side deadline cannot give: only the server can enforce a
//! timeout the client does not survive. A Lambda environment frozen or killed mid-wait never
//! sends its cancel request, so a client-side deadline leaves the statement waiting on its
//! lock, holding one of the proxy's few server connections, for as long as the lock lasts. A cancel request is also
//! a second connection (TCP, TLS, a proxy slot) opened at the worst moment, and behind a
//! transaction pooler it can race the server connection being handed to another client.

use std::time::Duration;

use tokio_postgres::{
    Client, Error, Row,
    types::{ToSql, Type},
};

/// Runs `sql` once as an unnamed statement in a transaction of its own, whose
/// `statement_timeout` is `timeout`. A lock wait past it fails with SQLSTATE 57014
/// ("canceling statement due to statement timeout"). If the statement fails, the `COMMIT`
/// ends the aborted transaction as a rollback and the statement's error is returned.
pub async fn query_typed_within(
    client: &Client,
    timeout: Duration,
    sql: &str,
    params: &[(&(dyn ToSql + Sync), Type)],
) -> Result<Vec<Row>, Error> {
    query_typed_in_transaction(client, &begin_within(timeout), sql, params).await
}

/// The `BEGIN` of a transaction whose statements time out after `timeout`, for
/// [`query_typed_in_transaction`]; more statements may follow it, separated by `;`.
pub fn begin_within(timeout: Duration) -> String {
    format!(
        "BEGIN; SET LOCAL statement_timeout = {}",
        timeout.as_millis()
    )
}

/// Runs `sql` as an unnamed statement in a transaction of its own that `begin` opens (a
/// `BEGIN`, then statements such as a `SET LOCAL` or a guard that fails the transaction), in
/// one round trip. An error of `begin` is returned first: the statement then ran in an
/// aborted transaction and changed nothing.
pub async fn query_typed_in_transaction(
    client: &Client,
    begin: &str,
    sql: &str,
    params: &[(&(dyn ToSql + Sync), Type)],
) -> Result<Vec<Row>, Error> {
    // tokio-postgres sends a request when its future is first polled and `join!` polls all
    // three at once: one round trip for the whole transaction.
    let (begun, rows, committed) = tokio::join!(
        client.batch_execute(begin),
        client.query_typed(sql, params),
        client.batch_execute("COMMIT"),
    );
    begun?;
    let rows = rows?;
    committed?;
    Ok(rows)
}
