//! Opening the connection, TLS included, while the secret is still on its way.
//!
//! Nothing before the login needs the credentials: the TCP handshake, Postgres' SSL request
//! and the TLS handshake (verify-full against `DB_HOST`, the name the login then uses) are
//! three round trips done in the shadow of the secret's fetch. tokio-postgres is then handed
//! the finished TLS stream as if it negotiated TLS directly (`sslnegotiation=direct`), so it
//! sends no SSL request of its own, and it reads the channel binding (SCRAM-SHA-256-PLUS)
//! from that stream as from one it made.

use std::{future::Ready, io, time::Instant};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tokio_postgres::{
    Config as PgConfig,
    config::Host,
    tls::{MakeTlsConnect, TlsConnect},
};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::{db::config::DbConfig, tls::Connector};

/// The TLS stream tokio-postgres-rustls makes over TCP.
pub(super) type PgTlsStream = <MakeRustlsConnect as MakeTlsConnect<TcpStream>>::Stream;

/// What an early connection got to before the credentials arrived.
pub(super) enum Early {
    /// TCP only: the connector wants no TLS.
    Tcp(TcpStream),
    /// TCP, the SSL request and the TLS handshake (boxed: a rustls session is large).
    Tls(Box<PgTlsStream>),
}

/// A connection started before the credentials are at hand, to the address `DB_HOST` (and
/// `DB_PORT`, else 5432) gives, so that the server starts the backend process for it and the
/// TLS handshake is done while the secret is on its way. Dropped unused, it stops trying.
pub(super) struct EarlyConnect {
    task: tokio::task::JoinHandle<io::Result<Early>>,
    host: String,
    port: u16,
}

impl EarlyConnect {
    pub(super) fn start(config: &DbConfig, connector: &Connector) -> Option<Self> {
        let host = config.host_override.clone()?;
        let port = config.port_override.unwrap_or(5432);
        let target = host.clone();
        let connector = connector.clone();
        let task = tokio::spawn(async move {
            let stream = TcpStream::connect((target.as_str(), port)).await?;
            // As tokio-postgres sets its own sockets: the login is a run of small messages.
            stream.set_nodelay(true)?;
            match connector {
                Connector::Plain => Ok(Early::Tcp(stream)),
                Connector::Tls(mut make) => {
                    let Ok(tls) = MakeTlsConnect::<TcpStream>::make_tls_connect(&mut make, &target);
                    handshake(stream, tls)
                        .await
                        .map(|s| Early::Tls(Box::new(s)))
                }
            }
        });
        Some(Self { task, host, port })
    }

    /// The connection for the login `pg` describes, waited for until `deadline`. `Ok(None)`:
    /// the login goes elsewhere (the secret named another host or port), or the early attempt
    /// failed (refused, no TLS, a certificate that does not verify), which the usual path then
    /// meets and reports. `Err`: still not ready at `deadline`.
    pub(super) async fn finish(
        mut self,
        pg: &PgConfig,
        deadline: Instant,
    ) -> Result<Option<Early>, ()> {
        let fits = matches!(pg.get_hosts(), [Host::Tcp(h)] if *h == self.host)
            && pg.get_ports().len() <= 1
            && pg.get_ports().first().copied().unwrap_or(5432) == self.port;
        if !fits {
            return Ok(None);
        }
        match tokio::time::timeout_at(deadline.into(), &mut self.task).await {
            Ok(Ok(Ok(early))) => Ok(Some(early)),
            Ok(Ok(Err(e))) => {
                tracing::debug!(error = %e, "the early connection failed; connecting again");
                Ok(None)
            }
            Ok(Err(_)) => Ok(None),
            Err(_) => Err(()),
        }
    }
}

impl Drop for EarlyConnect {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Postgres' SSLRequest message: its length (8), then the code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// Postgres' SSL request, then the TLS handshake `tls` makes: what tokio-postgres does first
/// on a new connection with `sslmode` require or stricter.
async fn handshake<T>(mut stream: TcpStream, tls: T) -> io::Result<PgTlsStream>
where
    T: TlsConnect<TcpStream, Stream = PgTlsStream>,
{
    stream.write_all(&SSL_REQUEST).await?;
    let mut answer = [0u8];
    stream.read_exact(&mut answer).await?;
    if answer[0] != b'S' {
        return Err(io::Error::other("the server does not support TLS"));
    }
    tls.connect(stream)
        .await
        .map_err(|e| io::Error::other(e.into()))
}

/// Hands tokio-postgres a stream whose TLS handshake is already done.
pub(super) struct Handshaken;

impl TlsConnect<PgTlsStream> for Handshaken {
    type Stream = PgTlsStream;
    type Error = io::Error;
    type Future = Ready<io::Result<PgTlsStream>>;

    fn connect(self, stream: PgTlsStream) -> Self::Future {
        std::future::ready(Ok(stream))
    }
}
