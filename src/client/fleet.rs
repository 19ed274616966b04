//! The client's pools: one per address of each target's host name, kept in step with
//! the configuration (a reload adds and removes targets) and with the name's answer,
//! resolved again every `resolveinterval`.
//!
//! A name with several addresses (a Kubernetes headless Service, a DNS round robin) is
//! several servers, and a caller's request can only be relayed by the server it reaches,
//! over connections registered to that server: so every server behind the name gets
//! connections of its own. An address that leaves the answer has its pool drained (idle
//! connections closed, busy ones closed once their exchange is done); a new one gets a
//! pool. A name that cannot be resolved keeps the pools it has (a DNS hiccup is no reason
//! to drop working connections); with none yet (a client started before its servers'
//! Service has ready pods), it is tried again with the dials' back-off (`reconnectdelay`
//! doubling up to `reconnectmaxdelay`), not only every `resolveinterval`.
//!
//! All of this runs on [`super::Client::run`]'s thread: it alone adds and removes pools,
//! so they need no lock. Each pool has its own supervisor thread ([`super::pool`]).

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender, TryRecvError};
use url::{Host, Url};

use super::pool::{backoff, TargetPool};
use super::Live;

/// Most addresses of one name given a pool: each costs `poolidlesize` connections and
/// their threads. Past it the rest of the answer is left out, and the log says so.
pub const MAX_ADDRESSES: usize = 32;

/// Longest wait for the look-ups of one round, all targets at once. An answer that comes
/// later is taken at the next round; meanwhile the target keeps the pools it has. The
/// system resolver tries for 5 s, twice, by default: a silent DNS server holds the round
/// no longer than this.
pub const RESOLVE_WAIT: Duration = Duration::from_secs(5);

/// Resolves a target's host name to the addresses of its servers.
pub trait Resolve: Send + Sync {
    /// Every address of `host` with `port`, in the order to prefer them.
    ///
    /// # Errors
    /// The name cannot be resolved now.
    fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>>;
}

impl<F> Resolve for F
where
    F: Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync,
{
    fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        self(host, port)
    }
}

/// The system's resolver (`getaddrinfo`: `/etc/hosts`, then DNS).
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        Ok((host, port).to_socket_addrs()?.collect())
    }
}

/// What a pool is for: a target, at one address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    target: String,
    addr: SocketAddr,
}

/// A pool in service. Dropping `drain` tells the pool to close its connections.
struct Member {
    pool: Arc<TargetPool>,
    _drain: Sender<()>,
}

/// The pools, and what decides them.
pub struct Fleet {
    live: Arc<Live>,
    resolver: Arc<dyn Resolve>,
    /// Disconnects when the client shuts down.
    stop: Receiver<()>,
    members: HashMap<Key, Member>,
    /// Pools drained and not yet closed: a shutdown waits for them too.
    leaving: Vec<Arc<TargetPool>>,
    /// Failed resolutions in a row, per target, to log an outage in a few lines.
    failures: HashMap<String, u32>,
    /// Look-ups running, by host and port: started by [`Fleet::ask`], their answers
    /// taken by [`Fleet::answer`].
    pending: HashMap<(String, u16), Receiver<io::Result<Vec<SocketAddr>>>>,
}

impl Fleet {
    pub fn new(live: Arc<Live>, resolver: Arc<dyn Resolve>, stop: Receiver<()>) -> Fleet {
        Fleet {
            live,
            resolver,
            stop,
            members: HashMap::new(),
            leaving: Vec::new(),
            failures: HashMap::new(),
            pending: HashMap::new(),
        }
    }

    /// Keeps the pools in step until the client shuts down, looking again every
    /// `resolveinterval` and at once after a reload (`reloaded`). Returns every pool
    /// still open, for the shutdown to wait on.
    pub fn run(mut self, reloaded: &Receiver<()>) -> Vec<Arc<TargetPool>> {
        loop {
            self.reconcile();
            let interval = self.next_look();
            crossbeam_channel::select! {
                recv(self.stop) -> _ => break,
                recv(reloaded) -> _ => {},
                default(interval) => {},
            }
            self.leaving.retain(|pool| pool.open() > 0);
        }
        let members = self.members.into_values().map(|member| member.pool);
        members.chain(self.leaving).collect()
    }

    /// How long until the next look: `resolveinterval`, or sooner while a target has no
    /// pool because its name did not resolve (see [`backoff`]).
    fn next_look(&self) -> Duration {
        let config = &self.live.get().config;
        let unserved = (self.failures.iter())
            .filter(|(target, _)| !self.members.keys().any(|key| key.target == **target))
            .map(|(_, failures)| *failures)
            .max();
        match unserved {
            Some(failures) => {
                let (first, max) = (config.reconnect_delay, config.reconnect_max_delay);
                backoff(first, max, failures, fastrand::f64()).min(config.resolve_interval)
            }
            None => config.resolve_interval,
        }
    }

    /// Works out the pools the targets call for now, starts those missing and drains
    /// those no longer called for. The targets' names are looked up all at once, and
    /// waited for together at most [`RESOLVE_WAIT`].
    fn reconcile(&mut self) {
        let settings = self.live.get();
        let targets = &settings.config.targets;
        // A target a reload removed is no longer retried.
        self.failures.retain(|target, _| targets.contains(target));
        let located: Vec<_> = targets.iter().map(|t| (t, locate(t))).collect();
        for (_, place) in &located {
            if let Ok(Place::Name(host, port)) = place {
                self.ask(host, *port);
            }
        }
        let deadline = Instant::now() + RESOLVE_WAIT;
        let mut wanted = Vec::new();
        for (target, place) in located {
            let found = match place {
                Ok(Place::Addr(addr)) => Ok(vec![addr]),
                Ok(Place::Name(host, port)) => self.answer(&host, port, deadline),
                Err(why) => Err(why),
            };
            if self.stopping() {
                return;
            }
            wanted.extend(self.keys_of(target, found));
        }
        let gone: Vec<Key> = (self.members.keys())
            .filter(|key| !wanted.contains(key))
            .cloned()
            .collect();
        for key in gone {
            if let Some(member) = self.members.remove(&key) {
                log::info!(
                    "{}: no longer a target or an address of it: closing its connections",
                    member.pool.name
                );
                self.leaving.push(member.pool);
            }
        }
        for key in wanted {
            if !self.members.contains_key(&key) {
                self.start(key);
            }
        }
    }

    /// The pools `target` calls for, given what its host `found`: one per address; when
    /// the name could not be resolved, those it has already.
    fn keys_of(&mut self, target: &str, found: Result<Vec<SocketAddr>, String>) -> Vec<Key> {
        let key = |addr| Key {
            target: target.to_string(),
            addr,
        };
        match found.and_then(|found| tidy(target, found)) {
            Ok(addrs) => {
                if self.failures.remove(target).is_some() {
                    log::info!("{target}: its host name resolves again");
                }
                addrs.into_iter().map(key).collect()
            }
            Err(why) => {
                let failures = self.failures.entry(target.to_string()).or_default();
                *failures = failures.saturating_add(1);
                let kept: Vec<Key> = (self.members.keys())
                    .filter(|k| k.target == target)
                    .cloned()
                    .collect();
                let pools = match kept.len() {
                    0 => "no connection can be opened".to_string(),
                    n => format!("its {n} pools are kept"),
                };
                // Every failure until the second, then fewer, as for dials.
                if failures.is_power_of_two() {
                    log::warn!("{target}: {why} (attempt {failures}); {pools}");
                } else {
                    log::debug!("{target}: {why} (attempt {failures})");
                }
                kept
            }
        }
    }

    /// Starts a look-up of `host` on a thread of its own, unless one is running already:
    /// a look-up (`getaddrinfo`) cannot be cut short, so one that a silent DNS server
    /// holds is waited for again at the next look, never asked anew, and threads never
    /// pile up.
    fn ask(&mut self, host: &str, port: u16) {
        let asked = (host.to_string(), port);
        if self.pending.contains_key(&asked) {
            return;
        }
        let (tell, answer) = bounded(1);
        let resolver = self.resolver.clone();
        let name = host.to_string();
        let spawned = thread::Builder::new()
            .name("resolve".into())
            .spawn(move || {
                let _ = tell.send(resolver.resolve(&name, port));
            });
        match spawned {
            Ok(_) => {
                self.pending.insert(asked, answer);
            }
            Err(e) => log::error!("cannot start a thread to resolve {host}: {e}"),
        }
    }

    /// The answer of the look-up of `host` that [`Fleet::ask`] started, waited for until
    /// `deadline` and not past a shutdown (then it stays pending).
    fn answer(
        &mut self,
        host: &str,
        port: u16,
        deadline: Instant,
    ) -> Result<Vec<SocketAddr>, String> {
        let asked = (host.to_string(), port);
        let Some(answer) = self.pending.get(&asked) else {
            return Err(format!("resolving {host}: no look-up could be started"));
        };
        let timeout = deadline.saturating_duration_since(Instant::now());
        let found = crossbeam_channel::select! {
            recv(answer) -> found => found,
            recv(self.stop) -> _ => return Err("shutting down".into()),
            default(timeout) => {
                let secs = RESOLVE_WAIT.as_secs();
                return Err(format!("resolving {host}: no answer within {secs} s"));
            }
        };
        self.pending.remove(&asked);
        match found {
            Ok(found) => found.map_err(|e| format!("resolving {host}: {e}")),
            Err(_) => Err(format!(
                "resolving {host}: the look-up ended with no answer"
            )),
        }
    }

    /// Whether the client is shutting down.
    fn stopping(&self) -> bool {
        matches!(self.stop.try_recv(), Err(TryRecvError::Disconnected))
    }

    /// Starts the pool for `key`, with its supervisor on a thread of its own.
    fn start(&mut self, key: Key) {
        let Ok(url) = Url::parse(&key.target) else {
            return;
        };
        let (drain, drained) = bounded(0);
        let pool = TargetPool::new(url, key.addr, self.live.clone(), self.stop.clone(), drained);
        let supervisor = pool.clone();
        let spawned = thread::Builder::new()
            .name("pool".into())
            .spawn(move || supervisor.supervise());
        if let Err(e) = spawned {
            log::error!("{}: cannot start a thread for the pool: {e}", pool.name);
            return;
        }
        let member = Member {
            pool,
            _drain: drain,
        };
        self.members.insert(key, member);
    }
}

/// Where a target's server is: an address given as such, or a name to resolve.
#[derive(Debug, PartialEq)]
enum Place {
    Addr(SocketAddr),
    Name(String, u16),
}

/// Where `target` (a URL) points.
fn locate(target: &str) -> Result<Place, String> {
    let url = Url::parse(target).map_err(|e| format!("not a URL: {e}"))?;
    let port = url.port_or_known_default().ok_or("no port")?;
    match url.host() {
        Some(Host::Ipv4(ip)) => Ok(Place::Addr(SocketAddr::new(ip.into(), port))),
        Some(Host::Ipv6(ip)) => Ok(Place::Addr(SocketAddr::new(ip.into(), port))),
        Some(Host::Domain(name)) => Ok(Place::Name(name.to_string(), port)),
        None => Err("no host".into()),
    }
}

/// The addresses `found` for `target`'s host, each once, at most [`MAX_ADDRESSES`]; an
/// empty answer is an error.
fn tidy(target: &str, found: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, String> {
    let mut addrs = Vec::new();
    for addr in found {
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    if addrs.is_empty() {
        return Err("its host name resolves to no address".to_string());
    }
    if addrs.len() > MAX_ADDRESSES {
        log::warn!(
            "{target}: its host name has {} addresses; pools for the first {MAX_ADDRESSES} only",
            addrs.len()
        );
        addrs.truncate(MAX_ADDRESSES);
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, (n >> 8) as u8, n as u8], 8080))
    }

    #[test]
    fn addresses_come_once_each_and_at_most_the_cap() {
        let mut answer: Vec<_> = (0..40).map(addr).collect();
        answer.insert(1, addr(0));
        let expected: Vec<_> = (0..MAX_ADDRESSES as u16).map(addr).collect();
        assert_eq!(tidy("ws://wsp.test:8080/register", answer), Ok(expected));
        assert_eq!(
            tidy("ws://wsp.test:8080/register", Vec::new()),
            Err("its host name resolves to no address".to_string())
        );
    }

    #[test]
    fn an_ip_target_is_one_address_and_a_name_is_resolved() {
        let v4 = locate("wss://192.0.2.7/register");
        assert_eq!(v4, Ok(Place::Addr(SocketAddr::from(([192, 0, 2, 7], 443)))));
        let v6 = locate("ws://[::1]:9/register");
        assert_eq!(v6, Ok(Place::Addr("[::1]:9".parse().expect("an address"))));
        let name = locate("ws://wsp.test/register");
        assert_eq!(name, Ok(Place::Name("wsp.test".into(), 80)));
    }
}
