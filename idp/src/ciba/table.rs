//! The backchannel authentication requests waiting for a person's device, in memory.
//!
//! A request is found two ways: by the client, through the SHA-256 of its `auth_req_id`
//! (the id itself is never kept, so a memory dump shows none a client could redeem), and
//! by the hinted person's device, through a separate random request id it is shown in
//! the listing. Nobody else's device finds it: every device-side look-up names the
//! subject the device proved to be, and a request of another subject answers exactly as
//! an unknown one.
//!
//! A request goes `Waiting` → `Challenged` (pass 1 of the device, its login handle kept;
//! a new pass 1 replaces it, so only the proof of the latest challenge counts) →
//! `Approved` (pass 2 verified as the hinted person) or `Denied` (the person said no),
//! and is taken by the client's next poll (single use: taken out under the lock).
//!
//! Bounded: at most `capacity` requests, [`PER_CLIENT`] of one client and
//! [`PER_SUBJECT`] for one person. An expired request is kept [`GRACE_SECS`] more, so a
//! late poll hears `expired_token` rather than `invalid_grant`, then swept. Time is passed
//! in (Unix seconds).

use std::collections::HashMap;

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use crate::authentication::Authenticated;
use crate::clients::random_token;

/// Requests one client may have waiting at once.
pub const PER_CLIENT: usize = 100;
/// Requests waiting for one person's device at once (from every client together).
pub const PER_SUBJECT: usize = 10;
/// Seconds an expired request is still remembered as expired.
pub const GRACE_SECS: u64 = 120;

/// A request to keep: who asks, for whom, for what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    /// The client asking.
    pub client_id: String,
    /// Its registered name (shown on the device).
    pub client_name: Option<String>,
    /// The person hinted (`sub`).
    pub subject: String,
    /// The scopes granted if the person approves.
    pub scope: String,
    /// The binding message to show on the device, checked.
    pub binding_message: Option<String>,
    /// Seconds it is good for.
    pub lifetime: u64,
}

/// A request just kept: what the client is answered (CIBA §7.3).
#[derive(Debug, Clone)]
pub struct Begun {
    /// The client's handle (256 random bits, base64url), known only to it.
    pub auth_req_id: Zeroizing<String>,
    /// Seconds it is good for.
    pub expires_in: u64,
    /// Seconds the client must wait between polls.
    pub interval: u64,
}

/// Why a request could not be kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Full {
    /// The table is full.
    #[error("{0} backchannel authentication requests are waiting, the most this server keeps")]
    Table(usize),
    /// The client has the most requests waiting it may have.
    #[error("this client has {0} requests waiting; wait for one to end")]
    Client(usize),
    /// The person has the most requests waiting they may have.
    #[error("{0} requests are waiting for this person's device; try again later")]
    Subject(usize),
}

/// A request as the hinted person's device lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The id the device approves or denies it by.
    pub request_id: String,
    /// The client asking.
    pub client_id: String,
    /// Its registered name.
    pub client_name: Option<String>,
    /// The scopes asked for.
    pub scope: String,
    /// What the client asked the device to show.
    pub binding_message: Option<String>,
    /// Seconds left.
    pub expires_in: u64,
}

/// Why a device may not act on a request id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refused {
    /// No request of this person has the id (never, another person's, or gone).
    #[error("no backchannel authentication request of yours has this id")]
    Unknown,
    /// Its time is over.
    #[error("the request expired")]
    Expired,
    /// The person approved or denied it already.
    #[error("the request is already decided")]
    Decided,
    /// The proof answers another challenge than this request's latest.
    #[error("the proof is not for this request's challenge")]
    OtherChallenge,
}

/// What a client's poll finds that is not a grant (CIBA §11's token errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotGranted {
    /// `authorization_pending`: the person has not decided yet.
    Pending,
    /// `slow_down`: the poll came before the interval passed.
    SlowDown,
    /// `expired_token`.
    Expired,
    /// `access_denied`: the person denied it (the request is gone).
    Denied,
    /// `invalid_grant`: no request has the id, or another client's has it.
    Invalid(&'static str),
}

/// An approved request, taken out of the table by its client's poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    /// The scopes granted.
    pub scope: String,
    /// Who approved it, how and when.
    pub who: Authenticated,
}

#[derive(Debug)]
enum State {
    Waiting,
    Challenged { login_id: String },
    Approved(Authenticated),
    Denied,
}

#[derive(Debug)]
struct Entry {
    request: NewRequest,
    request_id: String,
    expires: u64,
    next_poll: u64,
    state: State,
}

impl Entry {
    fn decided(&self) -> bool {
        matches!(self.state, State::Approved(_) | State::Denied)
    }
}

/// The requests waiting.
#[derive(Debug)]
pub struct Table {
    interval: u64,
    capacity: usize,
    by_hash: HashMap<[u8; 32], Entry>,
    by_request_id: HashMap<String, [u8; 32]>,
    per_client: HashMap<String, usize>,
    per_subject: HashMap<String, usize>,
    next_sweep: u64,
}

fn hash(auth_req_id: &str) -> [u8; 32] {
    Sha256::digest(auth_req_id.as_bytes()).into()
}

fn count_down(counts: &mut HashMap<String, usize>, key: &str) {
    if let Some(count) = counts.get_mut(key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            counts.remove(key);
        }
    }
}

impl Table {
    /// Empty; clients poll every `interval` seconds at most, `capacity` requests at most.
    pub fn new(interval: u64, capacity: usize) -> Self {
        Self {
            interval,
            capacity,
            by_hash: HashMap::new(),
            by_request_id: HashMap::new(),
            per_client: HashMap::new(),
            per_subject: HashMap::new(),
            next_sweep: 0,
        }
    }

    /// How many requests are kept (expired ones included until swept).
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Keeps `request` at `now`.
    pub fn begin(&mut self, request: NewRequest, now: u64) -> Result<Begun, Full> {
        if self.by_hash.len() >= self.capacity {
            self.sweep(now);
        }
        if self.by_hash.len() >= self.capacity {
            return Err(Full::Table(self.by_hash.len()));
        }
        let of_client = self.per_client.get(&request.client_id).copied();
        if let Some(count) = of_client.filter(|&count| count >= PER_CLIENT) {
            return Err(Full::Client(count));
        }
        let of_subject = self.per_subject.get(&request.subject).copied();
        if let Some(count) = of_subject.filter(|&count| count >= PER_SUBJECT) {
            return Err(Full::Subject(count));
        }
        let auth_req_id = random_token(32);
        let request_id = random_token(16).to_string();
        let key = hash(&auth_req_id);
        *self
            .per_client
            .entry(request.client_id.clone())
            .or_insert(0) += 1;
        *self.per_subject.entry(request.subject.clone()).or_insert(0) += 1;
        let expires_in = request.lifetime;
        self.by_request_id.insert(request_id.clone(), key);
        self.by_hash.insert(
            key,
            Entry {
                expires: now.saturating_add(request.lifetime),
                request,
                request_id,
                next_poll: now,
                state: State::Waiting,
            },
        );
        Ok(Begun {
            auth_req_id,
            expires_in,
            interval: self.interval,
        })
    }

    /// The undecided, unexpired requests for `subject`, soonest to expire first.
    pub fn for_subject(&self, subject: &str, now: u64) -> Vec<Listed> {
        let mut listed: Vec<Listed> = self
            .by_hash
            .values()
            .filter(|e| e.request.subject == subject && now < e.expires && !e.decided())
            .map(|e| Listed {
                request_id: e.request_id.clone(),
                client_id: e.request.client_id.clone(),
                client_name: e.request.client_name.clone(),
                scope: e.request.scope.clone(),
                binding_message: e.request.binding_message.clone(),
                expires_in: e.expires - now,
            })
            .collect();
        listed.sort_by_key(|l| l.expires_in);
        listed
    }

    /// The live, undecided request `request_id` of `subject`.
    fn open(&mut self, request_id: &str, subject: &str, now: u64) -> Result<&mut Entry, Refused> {
        let key = self.by_request_id.get(request_id).ok_or(Refused::Unknown)?;
        let entry = self.by_hash.get_mut(key).ok_or(Refused::Unknown)?;
        // Another person's request answers as an unknown one: a device learns nothing of
        // requests for others.
        if entry.request.subject != subject {
            return Err(Refused::Unknown);
        }
        if now >= entry.expires {
            return Err(Refused::Expired);
        }
        if entry.decided() {
            return Err(Refused::Decided);
        }
        Ok(entry)
    }

    /// Whether `subject`'s device may still act on `request_id` (before pass 1).
    pub fn check(&mut self, request_id: &str, subject: &str, now: u64) -> Result<(), Refused> {
        self.open(request_id, subject, now).map(|_| ())
    }

    /// Pass 1 of `subject`'s device answered with `login_id`: the proof must answer it.
    pub fn challenged(
        &mut self,
        request_id: &str,
        subject: &str,
        login_id: &str,
        now: u64,
    ) -> Result<(), Refused> {
        self.open(request_id, subject, now)?.state = State::Challenged {
            login_id: login_id.to_owned(),
        };
        Ok(())
    }

    /// Whether a proof of `login_id` answers the latest challenge of `request_id` (checked
    /// before the proof, so a proof for another request is not even verified).
    pub fn expects(&self, request_id: &str, login_id: &str, now: u64) -> Result<(), Refused> {
        let entry = self
            .by_request_id
            .get(request_id)
            .and_then(|key| self.by_hash.get(key))
            .ok_or(Refused::Unknown)?;
        if now >= entry.expires {
            return Err(Refused::Expired);
        }
        match &entry.state {
            State::Challenged { login_id: expected }
                if bool::from(expected.as_bytes().ct_eq(login_id.as_bytes())) =>
            {
                Ok(())
            }
            State::Approved(_) | State::Denied => Err(Refused::Decided),
            _ => Err(Refused::OtherChallenge),
        }
    }

    /// The proof of `login_id` verified as `who`: approved if `who` is the hinted person.
    /// Returns the client it was for.
    pub fn approve(
        &mut self,
        request_id: &str,
        login_id: &str,
        who: Authenticated,
        now: u64,
    ) -> Result<String, Refused> {
        self.expects(request_id, login_id, now)?;
        let entry = self.open(request_id, &who.subject, now)?;
        entry.state = State::Approved(who);
        Ok(entry.request.client_id.clone())
    }

    /// `subject` denies `request_id`; returns the client it was for.
    pub fn deny(&mut self, request_id: &str, subject: &str, now: u64) -> Result<String, Refused> {
        let entry = self.open(request_id, subject, now)?;
        entry.state = State::Denied;
        Ok(entry.request.client_id.clone())
    }

    /// The client `client_id` polls with `auth_req_id` at `now`: the grant once approved
    /// (taken out: a second poll finds nothing), else why not.
    pub fn poll(
        &mut self,
        auth_req_id: &str,
        client_id: &str,
        now: u64,
    ) -> Result<Granted, NotGranted> {
        let key = hash(auth_req_id);
        let entry = self.by_hash.get_mut(&key).ok_or(NotGranted::Invalid(
            "no backchannel authentication request has this id",
        ))?;
        if entry.request.client_id != client_id {
            return Err(NotGranted::Invalid(
                "the auth_req_id was issued to another client",
            ));
        }
        if now >= entry.expires {
            return Err(NotGranted::Expired);
        }
        if !entry.decided() {
            let early = now < entry.next_poll;
            entry.next_poll = now.saturating_add(self.interval);
            return Err(if early {
                NotGranted::SlowDown
            } else {
                NotGranted::Pending
            });
        }
        let Some(entry) = self.remove(&key) else {
            return Err(NotGranted::Invalid("the request is gone"));
        };
        match entry.state {
            State::Approved(who) => Ok(Granted {
                scope: entry.request.scope,
                who,
            }),
            _ => Err(NotGranted::Denied),
        }
    }

    fn remove(&mut self, key: &[u8; 32]) -> Option<Entry> {
        let entry = self.by_hash.remove(key)?;
        self.by_request_id.remove(&entry.request_id);
        count_down(&mut self.per_client, &entry.request.client_id);
        count_down(&mut self.per_subject, &entry.request.subject);
        Some(entry)
    }

    /// Drops requests expired more than [`GRACE_SECS`] ago, at most once a second unless
    /// full; returns how many.
    pub fn sweep(&mut self, now: u64) -> usize {
        if now < self.next_sweep && self.by_hash.len() < self.capacity {
            return 0;
        }
        self.next_sweep = now.saturating_add(1);
        let gone: Vec<[u8; 32]> = self
            .by_hash
            .iter()
            .filter(|(_, e)| now >= e.expires.saturating_add(GRACE_SECS))
            .map(|(key, _)| *key)
            .collect();
        for key in &gone {
            self.remove(key);
        }
        gone.len()
    }
}
