//! Opening the TCP connection while the secret is still on its way.

use std::time::Instant;

use tokio::net::TcpStream;
use tokio_postgres::{Config as PgConfig, config::Host};

use crate::db::config::DbConfig;

/// A TCP connection started before the credentials are at hand, to the address `DB_HOST` (and
/// `DB_PORT`, else 5432) gives, so that the server starts the backend process for it while the
/// secret is on its way. Dropped unused, it stops trying.
pub(super) struct EarlyConnect {
    task: tokio::task::JoinHandle<std::io::Result<TcpStream>>,
    host: String,
    port: u16,
}

impl EarlyConnect {
    pub(super) fn start(config: &DbConfig) -> Option<Self> {
        let host = config.host_override.clone()?;
        let port = config.port_override.unwrap_or(5432);
        let target = host.clone();
        let task = tokio::spawn(async move {
            let stream = TcpStream::connect((target.as_str(), port)).await?;
            // As tokio-postgres sets its own sockets: the login is a run of small messages.
            stream.set_nodelay(true)?;
            Ok(stream)
        });
        Some(Self { task, host, port })
    }

    /// The socket for the login `pg` describes, waited for until `deadline`. `Ok(None)`: the
    /// login goes elsewhere (the secret named another port), or the connect failed, which
    /// the usual path then meets and reports. `Err`: still not connected at `deadline`.
    pub(super) async fn finish(
        mut self,
        pg: &PgConfig,
        deadline: Instant,
    ) -> Result<Option<TcpStream>, ()> {
        let fits = matches!(pg.get_hosts(), [Host::Tcp(h)] if *h == self.host)
            && pg.get_ports().len() <= 1
            && pg.get_ports().first().copied().unwrap_or(5432) == self.port;
        if !fits {
            return Ok(None);
        }
        match tokio::time::timeout_at(deadline.into(), &mut self.task).await {
            Ok(Ok(Ok(stream))) => Ok(Some(stream)),
            Ok(_) => Ok(None),
            Err(_) => Err(()),
        }
    }
}

impl Drop for EarlyConnect {
    fn drop(&mut self) {
        self.task.abort();
    }
}
