//! The oracle: what the caller got through wsp against what it got straight from the
//! upstream, and what reached the upstream each way. Where wsp differs on purpose, the rule
//! is here, with its reason (the README's "What reaches the caller" table says the same).

use std::collections::BTreeMap;

use super::caller::Answer;
use super::upstream::Seen;
use super::wire::{End, Field};

/// One route's run of a case.
pub struct Outcome {
    pub answer: Result<Answer, String>,
    /// The request as the upstream saw it.
    pub seen: Option<Seen>,
    /// What the upstream's script waited for in vain (a body part held back).
    pub missed: Vec<String>,
    /// The second request on the same connection.
    pub again: Again,
}

/// How a second request on the caller's connection fared.
#[derive(Debug)]
pub enum Again {
    /// Answered in full: the connection stayed in step.
    Answered,
    /// Not sent: the connection ended with the first answer.
    Ended(String),
    /// Sent, and answered wrongly or not at all (the connection closed).
    Failed(String),
    /// Sent, and nothing came back: the connection is out of step.
    Stuck(String),
}

impl std::fmt::Display for Again {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Again::Answered => write!(f, "answered"),
            Again::Ended(why) => write!(f, "not sent, the connection ended: {why}"),
            Again::Failed(why) => write!(f, "failed: {why}"),
            Again::Stuck(why) => write!(f, "stuck: {why}"),
        }
    }
}

impl Again {
    fn is_answered(&self) -> bool {
        matches!(self, Again::Answered)
    }
}

impl Outcome {
    /// One line saying what the caller got, for `HARNESS_SHOW`.
    pub fn summary(&self) -> String {
        match &self.answer {
            Err(e) => format!("no answer: {e}"),
            Ok(a) => {
                let fields: Vec<String> = a
                    .fields
                    .iter()
                    .map(|(n, v)| format!("{n}: {}", preview(v)))
                    .collect();
                format!(
                    "{} {} interim {:?}, {fields:?}, body {:?} ({:?}, {} trailers); again: {}",
                    a.version,
                    a.status,
                    a.interim,
                    preview(&a.body),
                    a.end,
                    a.trailers.len(),
                    self.again
                )
            }
        }
    }
}

/// Headers that belong to one connection, never relayed (RFC 9110 §7.6.1), and framing
/// headers, which wsp chooses again for the caller's connection (RFC 9112 §6).
const PER_HOP: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

/// Added by wsp on purpose: `Date` when the upstream sent none (RFC 9110 §6.6.1: a
/// recipient with a clock adds it), `X-Forwarded-For` on the request (the caller's address).
const ADDED: [&str; 2] = ["date", "x-forwarded-for"];

/// The harness's own bookkeeping: each run numbers its request.
const RUN_NUMBER: &str = "x-harness-run";

/// Ways the tunnel's answer differs from the direct one that are not on purpose: empty
/// when wsp was transparent.
pub fn answer_differences(direct: &Outcome, tunnel: &Outcome, head_request: bool) -> Vec<String> {
    let direct = match &direct.answer {
        Ok(answer) => answer,
        Err(e) => return vec![format!("the direct path got no answer: {e}")],
    };
    let answer = match &tunnel.answer {
        Ok(answer) => answer,
        Err(e) => return vec![format!("no answer through wsp: {e}")],
    };
    let mut out = Vec::new();
    if let End::Cut(why) = &direct.end {
        // The upstream broke off: the caller must see the same cut, never a whole answer.
        if answer.status == direct.status && !direct.body.starts_with(&answer.body) {
            out.push("cut answer: the body through wsp is no prefix of the direct one".into());
        }
        if answer.end == End::Framed && answer.status == direct.status {
            out.push(format!(
                "direct answer was cut ({why}), through wsp it looked whole"
            ));
        }
        return out;
    }
    differ(&mut out, "status", &answer.status, &direct.status);
    if answer.body != direct.body {
        out.push(format!(
            "body differs: {} bytes through wsp, {} direct ({:?} vs {:?})",
            answer.body.len(),
            direct.body.len(),
            preview(&answer.body),
            preview(&direct.body)
        ));
    }
    if let End::Cut(why) = &answer.end {
        out.push(format!("the answer through wsp was cut: {why}"));
    }
    out.extend(field_differences(
        &direct.fields,
        &answer.fields,
        "response",
    ));
    out.extend(length_differences(direct, answer, head_request));
    // 1xx answers are not relayed: wsp's wire carries one head per response. The only
    // interim answer a caller sees is the `100 Continue` wsp's server gives itself.
    if answer.interim.iter().any(|&s| s != 100) {
        out.push(format!("interim answers through wsp: {:?}", answer.interim));
    }
    // Trailer fields are not relayed: the wire has no place for them after a body.
    if !answer.trailers.is_empty() {
        out.push(format!("trailers through wsp: {:?}", answer.trailers));
    }
    if answer.version != "HTTP/1.1" {
        out.push(format!(
            "answered with {} to an HTTP/1.1 caller",
            answer.version
        ));
    }
    out
}

/// `Content-Length` is re-chosen by wsp, but where the answer has no body it is the only
/// place the length shows: a HEAD's or a 304's must be the upstream's, and otherwise any
/// length given must be the body's.
fn length_differences(direct: &Answer, answer: &Answer, head_request: bool) -> Vec<String> {
    let length = |a: &Answer| super::wire::content_length(&a.fields);
    if head_request || answer.status == 304 {
        if length(direct) != length(answer) {
            let (d, t) = (length(direct), length(answer));
            return vec![format!(
                "Content-Length {t:?} through wsp, {d:?} direct (no body)"
            )];
        }
        return Vec::new();
    }
    match length(answer) {
        Some(n) if n != answer.body.len() && answer.status != 204 => {
            vec![format!(
                "Content-Length {n} for a {} byte body",
                answer.body.len()
            )]
        }
        _ => Vec::new(),
    }
}

/// Ways a refusal made on purpose differs from the one promised: wsp's `status`, a text
/// holding `words`, and nothing of the request reaching the upstream's script unasked.
pub fn refusal_differences(tunnel: &Outcome, status: u16, words: &str) -> Vec<String> {
    match &tunnel.answer {
        Err(e) => vec![format!("no refusal through wsp: {e}")],
        Ok(a) if a.status != status || !String::from_utf8_lossy(&a.body).contains(words) => {
            vec![format!(
                "expected wsp's {status} saying {words:?}, got {} {:?}",
                a.status,
                preview(&a.body)
            )]
        }
        Ok(_) => Vec::new(),
    }
}

/// Whether the tunnel's caller connection served its second request when it should: always,
/// unless the direct answer was cut (the caller must see the connection end), or the API
/// put its own kept-alive connection out of step (nginx 1.22 does after relaying a 103):
/// wsp's client reuses its connection to the API as the direct caller did, and meets the
/// same (then answers 504 after `requesttimeout`).
pub fn reuse_differences(direct: &Outcome, tunnel: &Outcome) -> Vec<String> {
    let cut = matches!(&direct.answer, Ok(a) if matches!(a.end, End::Cut(_)));
    if cut || matches!(direct.again, Again::Stuck(_)) || tunnel.again.is_answered() {
        return Vec::new();
    }
    vec![format!(
        "connection not reusable after the answer: second request {}",
        tunnel.again
    )]
}

/// Ways the request that reached the upstream through wsp differs from the direct one.
pub fn request_differences(direct: &Outcome, tunnel: &Outcome) -> Vec<String> {
    let (Some(direct), Some(seen)) = (&direct.seen, &tunnel.seen) else {
        return match (&direct.seen, &tunnel.seen) {
            // The internal API answered by itself (nginx's own locations).
            (None, None) => Vec::new(),
            (None, _) => vec!["the direct request never reached the upstream".into()],
            _ => vec!["the request never reached the upstream through wsp".into()],
        };
    };
    let mut out = Vec::new();
    differ(&mut out, "method", &seen.method, &direct.method);
    differ(&mut out, "target", &seen.target, &direct.target);
    if seen.body != direct.body || seen.body_end != direct.body_end {
        out.push(format!(
            "request body: {} bytes ({:?}) through wsp, {} ({:?}) direct",
            seen.body.len(),
            seen.body_end,
            direct.body.len(),
            direct.body_end
        ));
    }
    out.extend(field_differences(&direct.fields, &seen.fields, "request"));
    out
}

/// Compares end-to-end fields as the multimap HTTP makes them: names case-insensitive,
/// the values of one name in order (RFC 9110 §5.3); the order of different names carries
/// no meaning and is not compared.
pub(super) fn field_differences(direct: &[Field], tunnel: &[Field], what: &str) -> Vec<String> {
    let (d, t) = (end_to_end(direct), end_to_end(tunnel));
    let names = d
        .keys()
        .chain(t.keys())
        .collect::<std::collections::BTreeSet<_>>();
    names
        .into_iter()
        .filter(|name| d.get(*name) != t.get(*name))
        .map(|name| {
            let show = |m: &BTreeMap<String, Vec<Vec<u8>>>| {
                m.get(name)
                    .map(|vs| vs.iter().map(|v| preview(v)).collect::<Vec<_>>())
            };
            format!(
                "{what} header {name}: {:?} through wsp, {:?} direct",
                show(&t),
                show(&d)
            )
        })
        .collect()
}

/// The end-to-end fields: per-hop ones, the ones `Connection` names, and the ones wsp
/// adds on purpose left out.
fn end_to_end(fields: &[Field]) -> BTreeMap<String, Vec<Vec<u8>>> {
    let named: Vec<String> = fields
        .iter()
        .filter(|(n, _)| n == "connection")
        .flat_map(|(_, v)| {
            v.split(|&b| b == b',')
                .map(|t| String::from_utf8_lossy(t.trim_ascii()).to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut map: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for (name, value) in fields {
        if PER_HOP.contains(&name.as_str())
            || ADDED.contains(&name.as_str())
            || name == RUN_NUMBER
            || named.contains(name)
        {
            continue;
        }
        map.entry(name.clone()).or_default().push(value.clone());
    }
    map
}

/// Notes `what` when it differs.
fn differ<T: PartialEq + std::fmt::Debug>(
    out: &mut Vec<String>,
    what: &str,
    tunnel: &T,
    direct: &T,
) {
    if tunnel != direct {
        out.push(format!("{what} {tunnel:?} through wsp, {direct:?} direct"));
    }
}

/// At most 60 characters of `bytes`, for a readable failure.
fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    match text.char_indices().nth(60) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.into_owned(),
    }
}
