//! The sign-ins waiting for a device, in memory: each is one authorization request a
//! sign-in page shows, under its access number (what the device names) and a random
//! page handle (what the browser polls with; the device never sees it).
//!
//! An entry goes `Waiting` → `Challenged` (pass 1 of a device, its login handle kept) →
//! `Approved` (pass 2 verified, the person known) → taken by the page's next poll, which
//! issues the code. A new pass 1 replaces the login handle, so only the proof of the
//! latest challenge counts. Time is passed in (Unix seconds).
//!
//! Bounded: at most `capacity` entries, and [`PER_ADDRESS`] of one client address. An
//! entry is good until `expires`; it is kept for as long again, so a late device hears
//! `expired` rather than `unknown`, then swept (at most once a second, or when full).

use std::collections::HashMap;
use std::net::IpAddr;

use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use super::access_number::AccessNumber;
use crate::authentication::Authenticated;
use crate::clients::random_token;

/// Sign-ins one client address may have waiting at once.
pub const PER_ADDRESS: usize = 20;

/// What the device is shown of the request before the person types the PIN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The client asking.
    pub client_id: String,
    /// Its registered name.
    pub client_name: Option<String>,
    /// Where the code will go.
    pub redirect_uri: String,
    /// The scopes asked for.
    pub scope: String,
}

/// Why a sign-in could not be kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Full {
    /// The table is full.
    #[error("{0} sign-ins are waiting for a device, the most this server keeps")]
    Table(usize),
    /// This address has the most sign-ins waiting it may have.
    #[error("{0} sign-ins of this address are waiting; finish or abandon one")]
    Address(usize),
}

/// Why an access number does not lead to a sign-in the device may approve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refused {
    /// No sign-in has this number (never, or finished and gone).
    #[error("no sign-in is waiting under this access number")]
    Unknown,
    /// Its time is over.
    #[error("the access number expired; start the sign-in again")]
    Expired,
    /// A device approved it already.
    #[error("the sign-in under this access number is already approved")]
    Used,
    /// The proof answers another challenge than this sign-in's latest.
    #[error("the proof is not for this sign-in's challenge")]
    OtherChallenge,
}

#[derive(Debug)]
enum State {
    Waiting,
    Challenged { login_id: String },
    Approved(Authenticated),
}

#[derive(Debug)]
struct Entry {
    handle: Zeroizing<String>,
    params: Vec<(String, Zeroizing<String>)>,
    summary: Summary,
    address: Option<IpAddr>,
    expires: u64,
    state: State,
}

/// A page's view of its sign-in while it waits.
#[derive(Debug, Clone)]
pub struct Waiting {
    /// The access number shown.
    pub access_number: AccessNumber,
    /// The request.
    pub summary: Summary,
    /// Seconds left.
    pub expires_in: u64,
}

/// What a page's poll finds.
#[derive(Debug)]
pub enum Poll {
    /// Still waiting for a device.
    Waiting(Waiting),
    /// Approved: the request's parameters (checked again before the code is issued) and
    /// who signed in. The entry is gone.
    Approved(Vec<(String, Zeroizing<String>)>, Authenticated),
    /// Expired: the request's parameters (to send the client its error). The entry is
    /// gone.
    Expired(Vec<(String, Zeroizing<String>)>),
    /// No such page handle.
    Unknown,
}

/// A sign-in just kept.
#[derive(Debug, Clone)]
pub struct Begun {
    /// The number to show.
    pub access_number: AccessNumber,
    /// The page's handle (128 random bits and more, base64url).
    pub handle: Zeroizing<String>,
}

/// The sign-ins waiting for a device.
#[derive(Debug)]
pub struct Table {
    lifetime: u64,
    capacity: usize,
    by_number: HashMap<AccessNumber, Entry>,
    by_handle: HashMap<String, AccessNumber>,
    per_address: HashMap<IpAddr, usize>,
    next_sweep: u64,
}

impl Table {
    /// Empty; each sign-in good for `lifetime` seconds, `capacity` at most.
    pub fn new(lifetime: u64, capacity: usize) -> Self {
        Self {
            lifetime,
            capacity,
            by_number: HashMap::new(),
            by_handle: HashMap::new(),
            per_address: HashMap::new(),
            next_sweep: 0,
        }
    }

    /// How many entries are kept (expired ones included until swept).
    pub fn len(&self) -> usize {
        self.by_number.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.by_number.is_empty()
    }

    /// Keeps a sign-in of the request `params` (shown as `summary`) from `address`.
    pub fn begin(
        &mut self,
        params: Vec<(String, Zeroizing<String>)>,
        summary: Summary,
        address: Option<IpAddr>,
        now: u64,
    ) -> Result<Begun, Full> {
        self.sweep(now);
        if self.by_number.len() >= self.capacity {
            return Err(Full::Table(self.by_number.len()));
        }
        if let Some(address) = address {
            let count = self.per_address.get(&address).copied().unwrap_or(0);
            if count >= PER_ADDRESS {
                return Err(Full::Address(count));
            }
        }
        let mut rng = rand_core::OsRng;
        let access_number = loop {
            let number = AccessNumber::generate(&mut rng);
            if !self.by_number.contains_key(&number) {
                break number;
            }
        };
        let handle = random_token(32);
        if let Some(address) = address {
            *self.per_address.entry(address).or_insert(0) += 1;
        }
        self.by_handle
            .insert(handle.to_string(), access_number.clone());
        self.by_number.insert(
            access_number.clone(),
            Entry {
                handle: handle.clone(),
                params,
                summary,
                address,
                expires: now.saturating_add(self.lifetime),
                state: State::Waiting,
            },
        );
        Ok(Begun {
            access_number,
            handle,
        })
    }

    fn live(&mut self, number: &AccessNumber, now: u64) -> Result<&mut Entry, Refused> {
        let entry = self.by_number.get_mut(number).ok_or(Refused::Unknown)?;
        if now >= entry.expires {
            return Err(Refused::Expired);
        }
        Ok(entry)
    }

    /// The request behind `number` and its seconds left, if a device may still approve it.
    pub fn lookup(&mut self, number: &AccessNumber, now: u64) -> Result<Waiting, Refused> {
        let entry = self.live(number, now)?;
        if let State::Approved(_) = entry.state {
            return Err(Refused::Used);
        }
        Ok(Waiting {
            access_number: number.clone(),
            summary: entry.summary.clone(),
            expires_in: entry.expires - now,
        })
    }

    /// Pass 1 of a device answered with `login_id`: the proof must answer this one.
    pub fn challenged(
        &mut self,
        number: &AccessNumber,
        login_id: &str,
        now: u64,
    ) -> Result<(), Refused> {
        let entry = self.live(number, now)?;
        if let State::Approved(_) = entry.state {
            return Err(Refused::Used);
        }
        entry.state = State::Challenged {
            login_id: login_id.to_owned(),
        };
        Ok(())
    }

    /// Whether a proof of `login_id` answers the latest challenge of `number`'s sign-in
    /// (checked before the proof, so a proof for another sign-in is not even verified).
    pub fn expects(
        &mut self,
        number: &AccessNumber,
        login_id: &str,
        now: u64,
    ) -> Result<(), Refused> {
        let entry = self.live(number, now)?;
        match &entry.state {
            State::Approved(_) => Err(Refused::Used),
            State::Challenged { login_id: expected }
                if bool::from(expected.as_bytes().ct_eq(login_id.as_bytes())) =>
            {
                Ok(())
            }
            _ => Err(Refused::OtherChallenge),
        }
    }

    /// The proof of `login_id` verified as `who`: the sign-in is approved.
    pub fn approve(
        &mut self,
        number: &AccessNumber,
        login_id: &str,
        who: Authenticated,
        now: u64,
    ) -> Result<Summary, Refused> {
        self.expects(number, login_id, now)?;
        let entry = self.live(number, now)?;
        entry.state = State::Approved(who);
        Ok(entry.summary.clone())
    }

    /// The page with `handle` asks how its sign-in stands.
    pub fn poll(&mut self, handle: &str, now: u64) -> Poll {
        let Some(number) = self.by_handle.get(handle).cloned() else {
            return Poll::Unknown;
        };
        let Some(entry) = self.by_number.get(&number) else {
            return Poll::Unknown;
        };
        // The map is keyed by the handle; the compare is the check that matters.
        if !bool::from(entry.handle.as_bytes().ct_eq(handle.as_bytes())) {
            return Poll::Unknown;
        }
        let approved = matches!(entry.state, State::Approved(_));
        if !approved && now < entry.expires {
            return Poll::Waiting(Waiting {
                access_number: number,
                summary: entry.summary.clone(),
                expires_in: entry.expires - now,
            });
        }
        let Some(entry) = self.remove(&number) else {
            return Poll::Unknown;
        };
        match entry.state {
            State::Approved(who) => Poll::Approved(entry.params, who),
            _ => Poll::Expired(entry.params),
        }
    }

    fn remove(&mut self, number: &AccessNumber) -> Option<Entry> {
        let entry = self.by_number.remove(number)?;
        self.by_handle.remove(entry.handle.as_str());
        if let Some(address) = entry.address {
            if let Some(count) = self.per_address.get_mut(&address) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    self.per_address.remove(&address);
                }
            }
        }
        Some(entry)
    }

    /// Drops entries past twice their lifetime, at most once a second unless full.
    fn sweep(&mut self, now: u64) {
        if now < self.next_sweep && self.by_number.len() < self.capacity {
            return;
        }
        self.next_sweep = now.saturating_add(1);
        let lifetime = self.lifetime;
        let gone: Vec<AccessNumber> = self
            .by_number
            .iter()
            .filter(|(_, e)| now >= e.expires.saturating_add(lifetime))
            .map(|(n, _)| n.clone())
            .collect();
        for number in gone {
            self.remove(&number);
        }
    }
}
