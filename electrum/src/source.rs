//! A connection to one Electrum server, asked for headers and Merkle branches.

use std::time::Duration;

use bitcoin::block::Header;
use bitcoin::{BlockHash, Txid};
use electrum_client::{Client, ConfigBuilder, ElectrumApi, Param};
use serde_json::Value;

use crate::confirm::{check_branch, ConfirmedTx, NotConfirmed};
use crate::cross_check::{Agreement, CrossCheck, Disagreement, LocalChain, Outcome, RemoteHeaders};
use crate::decode::{self, DecodeError, MerkleAnswer};

/// An Electrum server, over `tcp://` (plain TCP; no TLS, no proxy).
///
/// Calls are sequential round trips. ElectrumX 1.19 and later pad `tcp://` answers against
/// traffic analysis and, once a session has been sent its first KiB, hold each small answer
/// up to a second (unless the session was idle for one): a verifier that checks now and then
/// should connect anew for each check (a cross-check and a confirmation fit in that first
/// KiB), rather than keep one connection busy.
pub struct ElectrumSource {
    client: Client,
    url: String,
}

/// Why an Electrum server could not answer usefully. Each names the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// No connection could be made (or the `server.version` handshake failed).
    #[error("cannot connect to electrum server {url}")]
    Connect {
        /// The server.
        url: String,
        /// The client's error.
        #[source]
        source: electrum_client::Error,
    },
    /// The request or its answer was lost (connection closed, timeout, not JSON).
    #[error("electrum server {url}: {method} failed")]
    Transport {
        /// The server.
        url: String,
        /// The Electrum method.
        method: &'static str,
        /// The client's error.
        #[source]
        source: electrum_client::Error,
    },
    /// The server answered with an error (e.g. a transaction not in the block asked about).
    #[error("electrum server {url} refused {method}: {message}")]
    Refused {
        /// The server.
        url: String,
        /// The Electrum method.
        method: &'static str,
        /// The server's error object.
        message: String,
    },
    /// The answer does not decode, or is not what was asked.
    #[error("electrum server {url} answered {method} with something unusable")]
    Decode {
        /// The server.
        url: String,
        /// The Electrum method.
        method: &'static str,
        /// What was wrong.
        #[source]
        source: DecodeError,
    },
}

/// Why a transaction was not confirmed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfirmError {
    /// The server could not be asked, or refused (it does not know the transaction there).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The server's answer does not prove the transaction is in the caller's block.
    #[error("electrum server {url} did not prove the transaction is in the block")]
    NotConfirmed {
        /// The server.
        url: String,
        /// Why not.
        #[source]
        reason: Box<NotConfirmed>,
    },
}

/// Why a live cross-check did not end in agreement.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrossCheckError {
    /// The two sources disagree.
    #[error(transparent)]
    Disagree(#[from] Disagreement),
    /// The Electrum server could not be asked.
    #[error(transparent)]
    Source(#[from] SourceError),
}

impl ElectrumSource {
    /// Connects to `url` (`tcp://HOST:PORT`, or `HOST:PORT`), giving each connection
    /// attempt and each answer `timeout`.
    pub fn connect(url: &str, timeout: Duration) -> Result<Self, SourceError> {
        let config = ConfigBuilder::new().timeout(Some(timeout)).build();
        let client = Client::from_config(url, config).map_err(|source| SourceError::Connect {
            url: url.to_owned(),
            source,
        })?;
        Ok(Self {
            client,
            url: url.to_owned(),
        })
    }

    /// The server's URL, as given to [`ElectrumSource::connect`].
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's tip: its height and header (`blockchain.headers.subscribe`).
    pub fn tip(&self) -> Result<(u32, Header), SourceError> {
        const METHOD: &str = "blockchain.headers.subscribe";
        let answer = self.call(METHOD, [])?;
        // Subscribing queues a notification per new block; nobody reads them here.
        while let Ok(Some(_)) = self.client.block_headers_pop_raw() {}
        self.decoded(METHOD, decode::tip(&answer))
    }

    /// The header at `height` (`blockchain.block.header`).
    pub fn header(&self, height: u32) -> Result<Header, SourceError> {
        const METHOD: &str = "blockchain.block.header";
        let answer = self.call(METHOD, [Param::U32(height)])?;
        self.decoded(METHOD, decode::header(&answer))
    }

    /// Up to `count` headers from `from` (`blockchain.block.headers`), each checked to
    /// build on the one before. Fewer come back when the server's tip or its per-call
    /// maximum (2016 for ElectrumX) is reached.
    pub fn headers(&self, from: u32, count: u32) -> Result<Vec<Header>, SourceError> {
        const METHOD: &str = "blockchain.block.headers";
        let answer = self.call(METHOD, [Param::U32(from), Param::U32(count)])?;
        self.decoded(METHOD, decode::headers(&answer, from, count))
    }

    /// The server's Merkle branch for `txid` in the block at `height`
    /// (`blockchain.transaction.get_merkle`), decoded but not checked: see
    /// [`ElectrumSource::confirm_tx`].
    pub fn merkle_branch(&self, txid: Txid, height: u32) -> Result<MerkleAnswer, SourceError> {
        const METHOD: &str = "blockchain.transaction.get_merkle";
        let answer = self.call(
            METHOD,
            [Param::String(txid.to_string()), Param::U32(height)],
        )?;
        self.decoded(METHOD, decode::merkle(&answer))
    }

    /// Confirms that `txid` is in the block at `height` whose header the caller holds:
    /// the server's branch ([`ElectrumSource::merkle_branch`]) must lead from `txid` to
    /// `header`'s Merkle root.
    pub fn confirm_tx(
        &self,
        txid: Txid,
        height: u32,
        header: &Header,
    ) -> Result<ConfirmedTx, ConfirmError> {
        let answer = self.merkle_branch(txid, height)?;
        check_branch(txid, height, header, &answer).map_err(|reason| ConfirmError::NotConfirmed {
            url: self.url.clone(),
            reason: Box::new(reason),
        })
    }

    /// Cross-checks the chain a verifier holds against this server's (see
    /// [`CrossCheck`] for the rules), fetching only the headers the check needs: the tip,
    /// the header at the lower tip if that is not the server's tip, and headers below it
    /// only while walking down a fork.
    pub fn cross_check<F>(
        &self,
        policy: &CrossCheck,
        local: &LocalChain<'_, F>,
    ) -> Result<Agreement, CrossCheckError>
    where
        F: Fn(u32) -> Option<BlockHash>,
    {
        let (tip, tip_header) = self.tip()?;
        drive(
            policy,
            local,
            &self.url,
            (tip, tip_header),
            |from, count| {
                if count == 1 {
                    Ok(vec![self.header(from)?])
                } else {
                    self.headers(from, count)
                }
            },
        )
    }

    fn call<const N: usize>(
        &self,
        method: &'static str,
        params: [Param; N],
    ) -> Result<Value, SourceError> {
        self.client
            .raw_call(method, params)
            .map_err(|source| match source {
                electrum_client::Error::Protocol(error) => SourceError::Refused {
                    url: self.url.clone(),
                    method,
                    message: error.to_string(),
                },
                source => SourceError::Transport {
                    url: self.url.clone(),
                    method,
                    source,
                },
            })
    }

    fn decoded<T>(
        &self,
        method: &'static str,
        value: Result<T, DecodeError>,
    ) -> Result<T, SourceError> {
        value.map_err(|source| self.decode_error(method, source))
    }

    fn decode_error(&self, method: &'static str, source: DecodeError) -> SourceError {
        SourceError::Decode {
            url: self.url.clone(),
            method,
            source,
        }
    }
}

/// The cross-check loop: runs the pure check, fetching what it asks for with `fetch`, until
/// it agrees or disagrees. Every header asked for must come (they are all below the source's
/// tip), and headers fetched just below the run held must link to it.
pub(crate) fn drive<F>(
    policy: &CrossCheck,
    local: &LocalChain<'_, F>,
    label: &str,
    (tip, tip_header): (u32, Header),
    mut fetch: impl FnMut(u32, u32) -> Result<Vec<Header>, SourceError>,
) -> Result<Agreement, CrossCheckError>
where
    F: Fn(u32) -> Option<BlockHash>,
{
    let (mut start, mut run) = (tip, vec![tip_header]);
    loop {
        let remote = RemoteHeaders {
            label,
            tip,
            start,
            headers: &run,
        };
        match policy.check(local, &remote) {
            Outcome::Agree(agreement) => return Ok(agreement),
            Outcome::Disagree(disagreement) => return Err(disagreement.into()),
            Outcome::Fetch { from, count } => {
                let fetched = fetch(from, count)?;
                let unusable = |source| SourceError::Decode {
                    url: label.to_owned(),
                    method: "blockchain.block.headers",
                    source,
                };
                if u32::try_from(fetched.len()) != Ok(count) {
                    let held = fetched.len();
                    let error = DecodeError::Count {
                        asked: count,
                        count: u64::try_from(held).unwrap_or(u64::MAX),
                        held,
                    };
                    return Err(unusable(error).into());
                }
                if from.checked_add(count) == Some(start) {
                    let joins = match (fetched.last(), run.first()) {
                        (Some(last), Some(first)) => first.prev_blockhash == last.block_hash(),
                        _ => true,
                    };
                    if !joins {
                        return Err(unusable(DecodeError::Unlinked { height: start }).into());
                    }
                    run.splice(0..0, fetched);
                } else {
                    run = fetched;
                }
                start = from;
            }
        }
    }
}

impl std::fmt::Debug for ElectrumSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElectrumSource")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}
