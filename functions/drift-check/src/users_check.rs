//! Cognito users against `users`, by sub, in passes that may span many runs. `ListUsers` is
//! paced ([`crate::pacing`]); each page is checked, noted and committed in one transaction
//! with the pass's new token ([`crate::pass`]), so a page is either wholly done (its missing
//! users reported, and backfilled in remediate mode) or not at all, and the next run continues
//! at the first page not done. Memory stays flat however large the pool: the subs a pass has
//! seen are kept in `drift_pass_subs`, and orphans come from one anti-join in Postgres once the
//! pass has read every page.
//!
//! `backfill` holds what is done for one missing user: whether the trigger's row may be
//! written, and writing it. [`status`] says which users owe a row: every status that can sign
//! in, as pure functions on the user record.

mod backfill;
pub mod status;

pub use shared::users::email_is_verified;

use std::time::{Duration, Instant};

use deadpool_postgres::ClientWrapper;
use serde_json::json;

use crate::{
    Completion, Error, State,
    cognito_pages::{self, Fetched, Pool},
    listing::{Page, store},
    pacing::Pacer,
    pass::{self, Claimed, PassStatus},
    report::{Action, Finding, Kind, PassProgress, Run, Skip},
};
use backfill::{Backfill, backfill, missing_user, unwritable, writable};

/// Where a run's pages come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source<'a> {
    /// `ListUsers`, paced, in this run (`DRIFT_USERS_FROM=cognito`).
    Cognito,
    /// The complete listing of this id, handed over by the lister and staged in Postgres.
    Listing(&'a str),
}

/// The least time the orphan anti-join is given, even with the deadline near.
const MIN_ORPHAN_QUERY_MS: u128 = 5_000;

/// Continues the pool's pass (or begins one) until the pass ends or the deadline comes;
/// returns `Partial` when the pass is not finished yet (then no orphan is reported: an
/// unfinished listing cannot tell a missing sub from an unread one), or when another run holds
/// the pass.
pub async fn check_users(
    state: &State,
    client: &ClientWrapper,
    run: &mut Run,
    deadline: Instant,
    source: Source<'_>,
) -> Result<Completion, Error> {
    let pool = state.config.user_pool_id.as_str();
    let Some(claimed) = pass::claim(client, pool, &run.id, lease(state, deadline)).await? else {
        tracing::info!(run_id = %run.id, "another run holds the pass over the user pool");
        return Ok(Completion::Partial);
    };
    let mut walk = Walk {
        progress: progress_of(&claimed, None),
        pass: claimed,
        source,
    };
    walk.date(client).await?;
    let outcome = walk.run(state, client, run, deadline).await;
    if walk.progress.finished
        && let Source::Listing(id) = source
    {
        store::compared(client, id, &run.id).await?;
    }
    if !walk.progress.finished {
        if let Err(e) = pass::release(client, walk.pass.id, &run.id).await {
            // The lease runs out by itself.
            tracing::warn!(run_id = %run.id, error = %e, "could not release the pass");
        }
    }
    tracing::info!(
        run_id = %run.id,
        pass_id = walk.progress.id,
        pages_read = walk.progress.pages_read,
        pass_pages_read = walk.progress.pass_pages_read,
        finished = walk.progress.finished,
        "user pass"
    );
    run.pass = Some(walk.progress);
    outcome
}

fn progress_of(pass: &Claimed, restarted_from: Option<i64>) -> PassProgress {
    PassProgress {
        id: pass.id,
        pass_pages_read: pass.pages_read,
        pass_users_seen: pass.users_seen,
        pass_runs: pass.runs,
        restarted_from,
        ..PassProgress::default()
    }
}

/// A run's walk through its pass.
struct Walk<'a> {
    pass: Claimed,
    progress: PassProgress,
    source: Source<'a>,
}

/// What committing a page did.
enum PageDone {
    More,
    PassFinished,
    /// Another run took the pass over (this run's lease ran out): nothing was written.
    LeaseLost,
}

impl Walk<'_> {
    /// A pass over a handed-over listing begins when the lister began listing, not later.
    async fn date(&self, client: &ClientWrapper) -> Result<(), Error> {
        if let Source::Listing(id) = self.source
            && self.pass.pages_read == 0
        {
            store::date_pass(client, self.pass.id, id).await?;
        }
        Ok(())
    }

    /// The page at the pass's token, from the run's source.
    async fn fetch(
        &self,
        state: &State,
        client: &ClientWrapper,
        pacer: &mut Pacer,
        deadline: Instant,
    ) -> Result<Fetched, Error> {
        let token = self.pass.token.as_deref();
        let id = match self.source {
            Source::Cognito => {
                let pool = Pool {
                    id: &state.config.user_pool_id,
                    page_size: state.config.page_size,
                };
                return cognito_pages::fetch(&state.cognito, pool, pacer, token, deadline).await;
            }
            Source::Listing(id) => id,
        };
        // A staged listing's token is the next chunk's number under the listing's id: a pass
        // left open over another listing (or over Cognito's own tokens) starts again.
        let prefix = format!("listing:{id}:");
        let seq = match token {
            None => 0,
            Some(t) => match t.strip_prefix(&prefix).and_then(|n| n.parse::<i32>().ok()) {
                Some(seq) => seq,
                None => {
                    return Ok(Fetched::TokenRefused(
                        "the pass was over another listing".into(),
                    ));
                }
            },
        };
        match store::chunk(client, id, seq).await? {
            Some((users, chunks)) => Ok(Fetched::Page(Page {
                users,
                next: (seq + 1 < chunks).then(|| format!("{prefix}{}", seq + 1)),
            })),
            None if seq == 0 && store::chunks_of(client, id).await? == Some(0) => {
                Ok(Fetched::Page(Page::default()))
            }
            None => Err(Error::Listing(format!("listing {id} has no chunk {seq}"))),
        }
    }

    async fn run(
        &mut self,
        state: &State,
        client: &ClientWrapper,
        run: &mut Run,
        deadline: Instant,
    ) -> Result<Completion, Error> {
        let mut pacer = Pacer::new(state.config.list_users_per_second);
        loop {
            let page = match self.fetch(state, client, &mut pacer, deadline).await? {
                Fetched::Page(page) => page,
                Fetched::OutOfTime => return Ok(Completion::Partial),
                Fetched::TokenRefused(why) => {
                    if self.progress.restarted_from.is_some() {
                        // A token Cognito gave this very run: restarting again would loop.
                        return Err(Error::Cognito {
                            message: format!("a fresh pagination token was refused: {why}"),
                            retryable: true,
                        });
                    }
                    if !self.restart(state, client, run, &why, deadline).await? {
                        return Ok(Completion::Partial);
                    }
                    continue;
                }
            };
            if Instant::now() >= deadline {
                // Too late to do the page justice: the next run reads it again.
                return Ok(Completion::Partial);
            }
            client.batch_execute("BEGIN").await?;
            let done = match self.page(state, client, run, &page, deadline).await {
                Ok(done) => done,
                Err(e) => {
                    // The connection is dropped on a database error; roll back for the rest.
                    let _ = client.batch_execute("ROLLBACK").await;
                    return Err(e);
                }
            };
            match done {
                PageDone::LeaseLost => {
                    client.batch_execute("ROLLBACK").await?;
                    tracing::warn!(run_id = %run.id, pass_id = self.pass.id, "another run took the pass over");
                    return Ok(Completion::Partial);
                }
                PageDone::More | PageDone::PassFinished => {
                    client.batch_execute("COMMIT").await?;
                }
            }
            // What the last closed pass left, a batch per page (and the last one first).
            pass::purge_closed(client).await?;
            if matches!(done, PageDone::PassFinished) {
                self.progress.finished = true;
                return Ok(Completion::Complete);
            }
            if Instant::now() >= deadline {
                return Ok(Completion::Partial);
            }
        }
    }

    /// Closes the pass whose token Cognito refused and claims a new one from the first page.
    /// `false`: the pass was no longer this run's.
    async fn restart(
        &mut self,
        state: &State,
        client: &ClientWrapper,
        run: &Run,
        why: &str,
        deadline: Instant,
    ) -> Result<bool, Error> {
        let old = self.pass.id;
        tracing::warn!(run_id = %run.id, pass_id = old, reason = why,
            "Cognito refused the pass's pagination token; the pass starts again from the first page");
        if !pass::close(client, old, &run.id, PassStatus::Restarted).await? {
            return Ok(false);
        }
        let lease = lease(state, deadline);
        let pool = state.config.user_pool_id.as_str();
        let Some(fresh) = pass::claim(client, pool, &run.id, lease).await? else {
            return Ok(false);
        };
        self.progress = progress_of(&fresh, Some(old));
        self.pass = fresh;
        self.date(client).await?;
        Ok(true)
    }

    /// Checks one page inside the caller's transaction: moves the pass past it, notes its
    /// subs, reports (and backfills) its missing users, and on the last page reports orphans
    /// and closes the pass.
    async fn page(
        &mut self,
        state: &State,
        client: &ClientWrapper,
        run: &mut Run,
        page: &Page,
        deadline: Instant,
    ) -> Result<PageDone, Error> {
        let users = i64::try_from(page.users.len()).unwrap_or(i64::MAX);
        let next = page.next.as_deref();
        let Some((pages_read, users_seen)) =
            pass::advance(client, self.pass.id, &run.id, next, users).await?
        else {
            return Ok(PageDone::LeaseLost);
        };
        let sub_attr = state.config.mapping.sub.as_str();
        let mut all = Vec::with_capacity(page.users.len());
        let mut confirmed = crate::profiles::Confirmed::new();
        for user in &page.users {
            let Some(sub) = user.attributes.get(sub_attr).cloned() else {
                continue;
            };
            all.push(sub.clone());
            // Every user who can sign in owes a row, not only the confirmed ([`status`]).
            if user.owes_row() {
                confirmed.insert(sub, (user.username.clone(), user.attributes.clone()));
            }
        }
        let confirmed_subs: Vec<&String> = confirmed.keys().collect();
        let note = client.prepare_cached(pass::NOTE_PAGE).await?;
        let missing: Vec<String> = client
            .query(&note, &[&self.pass.id, &all, &confirmed_subs])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for sub in &missing {
            let Some((username, attrs)) = confirmed.get(sub) else {
                continue;
            };
            let resource = format!("{}/{sub}", state.config.user_pool_id);
            // One user whose row cannot be written is reported with the reason and never holds
            // back the rest of the page or the pass.
            let finding = match writable(state, username.as_deref(), attrs) {
                Err(reason) => unwritable(resource, sub, Action::Reported, &reason),
                // The page was begun before the deadline and the margin covers its work: a
                // missing user left unfixed here would wait a whole pass for the next chance.
                // The kill switch is read before each backfill, as before each rule change.
                Ok(user) if run.may_change(client).await? => match backfill(client, &user).await? {
                    Backfill::Done(action) => missing_user(resource, sub, action),
                    Backfill::Refused(reason) => {
                        unwritable(resource, sub, Action::Failed(reason.clone()), &reason)
                    }
                },
                Ok(_) if run.remediating() => {
                    missing_user(resource, sub, Action::Skipped(Skip::Paused))
                }
                Ok(_) => missing_user(resource, sub, Action::None),
            };
            run.record(client, finding).await?;
        }
        crate::profiles::check_page(state, client, run, &confirmed, &missing).await?;
        self.progress.pages_read += 1;
        self.progress.users_seen += users;
        self.progress.pass_pages_read = pages_read;
        self.progress.pass_users_seen = users_seen;
        self.pass.token = next.map(str::to_owned);
        if next.is_some() {
            return Ok(PageDone::More);
        }
        // The anti-join reads every row of `users` and of the pass's subs: at millions of
        // users it may need longer than the statement timeout meant for single-row work, so
        // this transaction may take what is left of the run.
        let left_ms = deadline
            .saturating_duration_since(Instant::now())
            .as_millis();
        client
            .batch_execute(&format!(
                "SET LOCAL statement_timeout = {}",
                left_ms.max(MIN_ORPHAN_QUERY_MS)
            ))
            .await?;
        self.report_orphans(client, run).await?;
        if !pass::close(client, self.pass.id, &run.id, PassStatus::Complete).await? {
            return Ok(PageDone::LeaseLost);
        }
        Ok(PageDone::PassFinished)
    }

    /// User data is never deleted automatically: orphans are reported, nothing more.
    async fn report_orphans(&self, client: &ClientWrapper, run: &mut Run) -> Result<(), Error> {
        let room = i64::try_from(run.room(Kind::OrphanUser)).unwrap_or(i64::MAX);
        let row = client
            .query_one(pass::ORPHANS, &[&self.pass.id, &room])
            .await?;
        let (total, listed): (i64, Vec<String>) = (row.get(0), row.get(1));
        let unlisted = u64::try_from(total)
            .unwrap_or(0)
            .saturating_sub(listed.len() as u64);
        for sub in listed {
            let finding = Finding {
                kind: Kind::OrphanUser,
                resource: format!("users/{sub}"),
                desired: None,
                actual: Some(json!({"sub": sub})),
                action: Action::Reported,
            };
            run.record(client, finding).await?;
        }
        run.count_unstored(Kind::OrphanUser, &Action::Reported, unlisted);
        Ok(())
    }
}

/// How long a claim lasts: until Lambda would end this invocation, so a run that died holding
/// the pass blocks it no longer than that.
fn lease(state: &State, deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now()) + state.config.deadline_margin
}
