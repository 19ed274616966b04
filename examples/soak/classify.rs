//! Which failures the faults explain, and which they do not.
//!
//! - (a) **unsafe in flight**: under way while a client was dying (from its SIGKILL until
//!   it was reaped and its sockets closed), and not safe to send again: a POST (its body
//!   may have reached the upstream), or a response whose head had already gone out to the
//!   caller (only a cut connection can tell the caller then). The caller cannot see which
//!   client carried a request, so "under way while it died" is what is checked: a failed
//!   request of the other client would be counted here too.
//! - (b) **server restart**: started while the server was stopping or down, or within
//!   [`REJOIN_WINDOW`] after the new one listened, and failed to connect, got no answer,
//!   or got a 526 (no client registered again yet); or under way at the SIGTERM and
//!   answered 503 `wsp server is shutting down` (it reached the server after it stopped
//!   taking requests).
//! - (c) **other**: everything else, the target being zero: a GET lost with a killed
//!   client (the server should have tried another connection), a request in flight when
//!   the server got SIGTERM (it should have finished it), a 526 long after a fault, ...

use std::time::Duration;

use crate::load::{Kind, Outcome, Record};
use crate::schedule::Timeline;

/// After the restarted server listens, how long its clients may take to register again
/// before a 526 stops being explained by the restart (they dial again within about a
/// second: the reconnect back-off is capped at 1 s).
pub const REJOIN_WINDOW: Duration = Duration::from_secs(5);
/// Requests under way this soon after a fault are left out of the "steady" latencies.
pub const SETTLE: Duration = Duration::from_secs(2);
/// The status of the server's own refusals.
const STATUS_PROXY_ERROR: u16 = 526;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Ok,
    UnsafeInFlight,
    ServerRestart,
    Other,
}

/// The class of one request.
pub fn classify(record: &Record, timeline: &Timeline) -> Class {
    if record.outcome.is_ok() {
        Class::Ok
    } else if is_unsafe_in_flight(record, timeline) {
        Class::UnsafeInFlight
    } else if is_server_restart(record, timeline) {
        Class::ServerRestart
    } else {
        Class::Other
    }
}

fn is_unsafe_in_flight(record: &Record, timeline: &Timeline) -> bool {
    let not_retryable = record.kind == Kind::Post || matches!(record.outcome, Outcome::BodyCut(_));
    let dying = |k: &crate::schedule::Kill| record.start <= k.gone && k.at <= record.end();
    not_retryable && timeline.kills.iter().any(dying)
}

fn is_server_restart(record: &Record, timeline: &Timeline) -> bool {
    let Some(restart) = &timeline.restart else {
        return false;
    };
    let during = restart.term <= record.start && record.start <= restart.ready + REJOIN_WINDOW;
    let refused = matches!(
        record.outcome,
        Outcome::Transport { .. }
            | Outcome::Status {
                code: STATUS_PROXY_ERROR,
                ..
            }
    );
    let shutting_down = matches!(record.outcome, Outcome::Status { code: 503, .. })
        && record.start <= restart.ready
        && restart.term <= record.end();
    (during && refused) || shutting_down
}

/// Whether `record` was under way within [`SETTLE`] after a fault (or while the server
/// was away).
pub fn near_fault(record: &Record, timeline: &Timeline) -> bool {
    let overlaps = |from: Duration, to: Duration| record.start <= to && from <= record.end();
    let kills = timeline.kills.iter().any(|k| overlaps(k.at, k.at + SETTLE));
    let restart = timeline
        .restart
        .as_ref()
        .is_some_and(|r| overlaps(r.term, r.ready + SETTLE));
    kills || restart
}

/// Where `record` stood relative to the faults: the last one that happened before it
/// ended, and whether it was under way at that moment.
pub fn relative_to_faults(record: &Record, timeline: &Timeline) -> String {
    let mut events: Vec<(Duration, String)> = timeline
        .kills
        .iter()
        .map(|k| (k.at, format!("SIGKILL of {} #{}", k.client, k.generation)))
        .collect();
    if let Some(r) = &timeline.restart {
        events.push((r.term, "SIGTERM to the server".into()));
        events.push((r.ready, "the restarted server listening".into()));
    }
    let last = events
        .iter()
        .filter(|(at, _)| *at <= record.end())
        .max_by_key(|(at, _)| *at);
    match last {
        None => "before any fault".into(),
        Some((at, what)) if record.spans(*at) => format!(
            "in flight at the {what} (t={:.2} s; started {:.2} s before it)",
            at.as_secs_f64(),
            (*at - record.start).as_secs_f64()
        ),
        Some((at, what)) => format!(
            "started {:.2} s after the {what} (t={:.2} s)",
            (record.start - *at).as_secs_f64(),
            at.as_secs_f64()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::Kill;
    use crate::stack::Restart;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// A kill at 20 s, a SIGTERM at 30 s, the new server listening at 31 s.
    fn timeline() -> Timeline {
        Timeline {
            kills: vec![Kill {
                at: secs(20.0),
                gone: secs(20.005),
                client: "soak-a".into(),
                generation: 1,
            }],
            restart: Some(Restart {
                term: secs(30.0),
                gone: secs(30.5),
                forced: false,
                ready: secs(31.0),
            }),
            ..Timeline::default()
        }
    }

    fn record(kind: Kind, start: f64, latency: f64, outcome: Outcome) -> Record {
        Record {
            kind,
            start: secs(start),
            latency: secs(latency),
            outcome,
        }
    }

    fn status_526() -> Outcome {
        Outcome::Status {
            code: 526,
            first_line: "No proxy available".into(),
        }
    }

    fn refused() -> Outcome {
        Outcome::Transport {
            connect: true,
            error: "refused".into(),
        }
    }

    #[test]
    fn post_or_cut_body_across_a_kill_is_the_unsafe_case() {
        let t = timeline();
        let post = record(Kind::Post, 19.99, 0.02, status_526());
        assert_eq!(classify(&post, &t), Class::UnsafeInFlight);
        let cut = record(Kind::Bytes, 19.99, 0.02, Outcome::BodyCut("eof".into()));
        assert_eq!(classify(&cut, &t), Class::UnsafeInFlight);
    }

    #[test]
    fn get_lost_at_a_kill_or_post_after_it_is_unexplained() {
        let t = timeline();
        let get = record(Kind::Sleep, 19.99, 0.02, status_526());
        assert_eq!(classify(&get, &t), Class::Other);
        let post_after = record(Kind::Post, 20.01, 0.01, status_526());
        assert_eq!(classify(&post_after, &t), Class::Other);
    }

    #[test]
    fn refusals_belong_to_the_restart_only_inside_its_window() {
        let t = timeline();
        assert_eq!(
            classify(&record(Kind::Hello, 30.2, 0.0, refused()), &t),
            Class::ServerRestart
        );
        let late = 31.0 + REJOIN_WINDOW.as_secs_f64() - 0.1;
        let in_window = record(Kind::Hello, late, 0.0, status_526());
        assert_eq!(classify(&in_window, &t), Class::ServerRestart);
        let after = record(Kind::Hello, late + 0.2, 0.0, status_526());
        assert_eq!(classify(&after, &t), Class::Other);
        let in_flight_at_term = record(Kind::Hello, 29.99, 0.02, refused());
        assert_eq!(classify(&in_flight_at_term, &t), Class::Other);
        let ok = record(Kind::Hello, 30.2, 0.0, Outcome::Ok);
        assert_eq!(classify(&ok, &t), Class::Ok);
    }

    #[test]
    fn near_fault_and_place_relative_to_faults() {
        let t = timeline();
        assert!(near_fault(&record(Kind::Hello, 21.0, 0.1, Outcome::Ok), &t));
        assert!(!near_fault(
            &record(Kind::Hello, 25.0, 0.1, Outcome::Ok),
            &t
        ));
        let place = relative_to_faults(&record(Kind::Post, 20.5, 0.1, status_526()), &t);
        assert_eq!(
            place,
            "started 0.50 s after the SIGKILL of soak-a #1 (t=20.00 s)"
        );
        let place = relative_to_faults(&record(Kind::Hello, 1.0, 0.0, Outcome::Ok), &t);
        assert_eq!(place, "before any fault");
    }
}
