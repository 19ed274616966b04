//! A request relayed over one connection after another: the policy that says when a
//! failed exchange may be sent again and how many times ([`decide`]), and the loop that
//! acts on it ([`relay()`]).
//!
//! The loop owns the caller's request from the first connection to the answer: each
//! exchange only borrows it ([`super::relay::send`]) until its response head is in, so a
//! failed one leaves it here, ready for the next connection. Answering is left to
//! [`super::relay`] (the response, or the failure) and [`super::reply`] (no connection).

use std::sync::Arc;
use std::time::Instant;

use tiny_http::Request;

use super::pool::{AcquireError, Choice};
use super::relay::{self, Failure, Stage};
use super::reply::{busy, refuse};
use super::Shared;
use crate::protocol::{Error, RequestHead};

/// How many connections one request may try, when the ones before failed in a way that
/// makes trying again safe ([`decide`]).
pub const MAX_ATTEMPTS: usize = 4;

/// Methods whose request may be sent twice without changing its effect (RFC 9110 §9.2.2).
const IDEMPOTENT: [&str; 6] = ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"];

/// What becomes of a request whose exchange failed before the response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Send it again, over a connection of another client than this one if there is one.
    TryAnother,
    /// Answer the caller with this failure: sending the request again would not be safe.
    Answer,
    /// Safe to send again, but [`MAX_ATTEMPTS`] connections failed already: give up.
    GiveUp,
}

/// The policy: what to do after the exchange of `head` failed with `failure`, this one
/// being the `attempts`th to fail.
pub fn decide(head: &RequestHead, failure: &Failure, attempts: usize) -> Next {
    if !is_replayable(head, failure) {
        Next::Answer
    } else if attempts < MAX_ATTEMPTS {
        Next::TryAnother
    } else {
        Next::GiveUp
    }
}

/// Safe to send again elsewhere: the connection simply died (closed or reset), nothing
/// of the caller's body was consumed, and either the request never got out whole, or it
/// is idempotent and no answer had begun. A time-out is no death: the client may be busy
/// performing the request, and sending it again would double the work and the wait.
fn is_replayable(head: &RequestHead, Failure { stage, error }: &Failure) -> bool {
    let connection_lost = match error {
        Error::Closed => true,
        Error::Io(_) => !error.is_timeout(),
        _ => false,
    };
    let untouched = *stage == Stage::Head || head.body_len() == Some(0);
    connection_lost
        && untouched
        && (*stage != Stage::Receiving || IDEMPOTENT.contains(&head.method.as_str()))
}

/// The answer when a stream (`CONNECT`, a WebSocket) finds no client that can carry
/// one: Go clients do not announce streams.
pub const NO_STREAMS: &str = "wsp server: no connected client supports streams \
    (CONNECT and WebSocket upgrades need a wsp client, not a Go one)";

/// Relays `request` over a connection of client `only` (of any client without it) and
/// answers the caller, trying other connections while [`decide`] allows. `arrival` is
/// when the request came: the wait for a connection ends `timeout` after it.
pub fn relay(
    shared: &Shared,
    head: &RequestHead,
    mut request: Request,
    only: Option<&str>,
    arrival: Instant,
) {
    let deadline = arrival + shared.config().timeout;
    let mut failed_client: Option<Arc<str>> = None;
    let mut attempts = 0;
    loop {
        let choice = Choice {
            only,
            avoid: failed_client.as_deref(),
            streams: false,
        };
        let mut lease = match shared.hub.acquire(deadline, choice) {
            Ok(lease) => lease,
            Err(e) => return no_connection(shared, request, e, only),
        };
        attempts += 1;
        let failure = match relay::send(&mut lease, head, &mut request, shared.keeper()) {
            Ok(started) => return relay::answer(shared, lease, head, request, started, arrival),
            Err(failure) => failure,
        };
        let next = decide(head, &failure, attempts);
        if next == Next::Answer {
            let error = &failure.error;
            return relay::answer_failure(shared, lease, head, request, error, arrival);
        }
        shared.metrics.count_failed(&lease.conn().stats);
        failed_client = Some(lease.conn().client_id.clone());
        drop(lease);
        if next == Next::GiveUp {
            return refuse(
                request,
                "Unable to relay request: every connection tried failed",
            );
        }
    }
}

/// Answers a request no connection could be had for.
pub(super) fn no_connection(
    shared: &Shared,
    request: Request,
    error: AcquireError,
    only: Option<&str>,
) {
    let busy_status = shared.config().busy_status;
    match error {
        AcquireError::NoClient => busy(request, busy_status, "No proxy available"),
        AcquireError::UnknownClient => {
            let id = only.unwrap_or_default();
            refuse(request, &format!("No client \"{id}\" connected"));
        }
        AcquireError::Timeout => busy(request, busy_status, "Unable to get a proxy connection"),
        AcquireError::NoStreams => {
            let _ = request.respond(super::reply::text_response(501, NO_STREAMS));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::{decide, Next, MAX_ATTEMPTS};
    use crate::protocol::{Error, RequestHead};
    use crate::server::relay::{Failure, Stage};

    /// A request head; `content_length` as on the wire (-1: chunked).
    fn head(method: &str, content_length: i64) -> RequestHead {
        RequestHead {
            method: method.into(),
            url: "http://api/x".into(),
            header: Default::default(),
            content_length,
            stream: None,
        }
    }

    fn failed(stage: Stage, error: Error) -> Failure {
        Failure { stage, error }
    }

    fn closed(stage: Stage) -> Failure {
        failed(stage, Error::Closed)
    }

    fn io(stage: Stage, kind: io::ErrorKind) -> Failure {
        failed(stage, Error::Io(kind.into()))
    }

    #[test]
    fn a_lost_connection_is_tried_again_until_the_attempts_run_out() {
        let get = head("GET", 0);
        for attempts in 1..MAX_ATTEMPTS {
            let next = decide(&get, &closed(Stage::Receiving), attempts);
            assert_eq!(next, Next::TryAnother, "attempt {attempts}");
        }
        let last = decide(&get, &closed(Stage::Receiving), MAX_ATTEMPTS);
        assert_eq!(last, Next::GiveUp);
        let reset = io(Stage::Sending, io::ErrorKind::ConnectionReset);
        assert_eq!(decide(&get, &reset, 1), Next::TryAnother);
    }

    #[test]
    fn a_time_out_is_answered_not_tried_again() {
        let get = head("GET", 0);
        for kind in [io::ErrorKind::TimedOut, io::ErrorKind::WouldBlock] {
            for stage in [Stage::Sending, Stage::Receiving] {
                let next = decide(&get, &io(stage, kind), 1);
                assert_eq!(next, Next::Answer, "{kind:?} at {stage:?}");
            }
        }
    }

    #[test]
    fn only_a_dead_connection_counts() {
        let get = head("GET", 0);
        let others = [
            Error::Head("bad status".into()),
            Error::Framing("unmasked".into()),
            Error::BodySource(io::ErrorKind::ConnectionReset.into()),
            Error::TooLarge {
                what: "a response head",
                limit: 1,
            },
        ];
        for error in others {
            let what = error.to_string();
            let next = decide(&get, &failed(Stage::Receiving, error), 1);
            assert_eq!(next, Next::Answer, "{what}");
        }
    }

    #[test]
    fn a_body_is_sent_again_only_if_none_of_it_was_read() {
        for length in [10, -1] {
            let post = head("POST", length);
            assert_eq!(decide(&post, &closed(Stage::Head), 1), Next::TryAnother);
            assert_eq!(decide(&post, &closed(Stage::Sending), 1), Next::Answer);
            let put = head("PUT", length);
            assert_eq!(decide(&put, &closed(Stage::Receiving), 1), Next::Answer);
        }
    }

    #[test]
    fn a_request_that_may_have_run_is_sent_again_only_if_idempotent() {
        for method in ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"] {
            let next = decide(&head(method, 0), &closed(Stage::Receiving), 1);
            assert_eq!(next, Next::TryAnother, "{method}");
        }
        for method in ["POST", "PATCH", "CONNECT", "PROPFIND"] {
            let sent = decide(&head(method, 0), &closed(Stage::Receiving), 1);
            assert_eq!(sent, Next::Answer, "{method}");
            // Not out whole, it cannot have run.
            let unsent = decide(&head(method, 0), &closed(Stage::Sending), 1);
            assert_eq!(unsent, Next::TryAnother, "{method}");
        }
    }
}
