//! The node adapter: `bitcoind`'s JSON-RPC and REST, and nothing else in the workspace
//! speaks them.
//!
//! Bulk reads use JSON-RPC batches (one HTTP round trip for many `getblockhash` or
//! `getblock` calls). Cookie authentication re-reads the cookie file when the node refuses
//! the old one, so the adapter survives a node restart. Serialized blocks for the follower
//! ([`ChainSource::raw_block`]) come over REST ([`rest`]), which the node serves only with
//! `-rest=1`.

mod rest;
mod wallet;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bitcoin::block::Header;
use bitcoin::consensus::encode;
use bitcoin::merkle_tree::MerkleBlock;
use bitcoin::{Block, BlockHash, Transaction, Txid};
use jsonrpc::http::bitreq_http::BitreqHttpTransport;
use serde::de::DeserializeOwned;
use serde_json::{json, value::RawValue, Value};

use crate::chain::{BlockId, ChainError, ChainSource};

/// How to authenticate to the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpcAuth {
    /// The `.cookie` file the node writes at start-up (re-read when it changes).
    CookieFile(PathBuf),
    /// A fixed `rpcuser`/`rpcpassword` pair.
    UserPass(String, String),
}

/// A `bitcoind` reached over JSON-RPC.
pub struct BitcoindRpc {
    url: String,
    auth: RpcAuth,
    timeout: Duration,
    client: Mutex<Option<jsonrpc::Client>>,
    /// The REST connection, made on first use (only the follower's block reader uses it).
    rest: Mutex<Option<rest::RestClient>>,
    /// The node's chain, asked once for the wallet calls that turn scripts into addresses
    /// and back (a node does not change chains under a running process).
    chain: OnceLock<bitcoin::Network>,
}

impl std::fmt::Debug for BitcoindRpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BitcoindRpc")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// What the node made of a transaction sent again ([`BitcoindRpc::resend_anchor`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resent {
    /// Accepted into the mempool (or already there).
    Accepted,
    /// Already confirmed.
    AlreadyInChain,
    /// Refused for inputs that are missing or spent: it can never confirm as it is
    /// (unless the inputs come back, e.g. after a sync). The node's message.
    InputsGone(String),
}

/// How many times [`BitcoindRpc::wallet_pay`] asks the wallet for a payment its node
/// accepts.
pub const WALLET_PAY_ATTEMPTS: u32 = 3;

/// Bitcoin Core's code for "block height out of range".
const RPC_INVALID_PARAMETER: i32 = -8;
/// Bitcoin Core's code for "no such block or transaction".
const RPC_INVALID_ADDRESS_OR_KEY: i32 = -5;
/// Bitcoin Core's code for "the transaction's inputs are missing or already spent".
pub const RPC_VERIFY_ERROR: i32 = -25;
/// Bitcoin Core's code for "the transaction is already in the chain".
pub const RPC_VERIFY_ALREADY_IN_CHAIN: i32 = -27;

impl BitcoindRpc {
    /// Runs `f` with the REST client (made on first use).
    fn with_rest<T>(
        &self,
        f: impl FnOnce(&mut rest::RestClient) -> Result<T, ChainError>,
    ) -> Result<T, ChainError> {
        let mut rest = self
            .rest
            .lock()
            .map_err(|_| ChainError::Unreachable("rest client lock poisoned".into()))?;
        let client = match &mut *rest {
            Some(client) => client,
            None => rest.insert(rest::RestClient::new(&self.url, self.timeout)?),
        };
        f(client)
    }

    /// An adapter for the node at `url` (e.g. `http://127.0.0.1:18443`).
    pub fn new(url: impl Into<String>, auth: RpcAuth) -> Self {
        Self {
            url: url.into(),
            auth,
            timeout: Duration::from_secs(120),
            client: Mutex::new(None),
            rest: Mutex::new(None),
            chain: OnceLock::new(),
        }
    }

    /// The same node with another per-request timeout (default 120 s, enough for a
    /// large `getblock` batch).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self.client = Mutex::new(None);
        self.rest = Mutex::new(None);
        self
    }

    /// An adapter for the RPCs of one of the node's wallets (`URL/wallet/NAME`), needed
    /// when more than one wallet is loaded.
    pub fn for_wallet(&self, name: &str) -> Self {
        Self::new(
            format!("{}/wallet/{name}", self.url.trim_end_matches('/')),
            self.auth.clone(),
        )
        .with_timeout(self.timeout)
    }

    /// The node's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// An adapter authenticating with a cookie file.
    pub fn with_cookie(url: impl Into<String>, cookie: &Path) -> Self {
        Self::new(url, RpcAuth::CookieFile(cookie.to_path_buf()))
    }

    fn connect(&self) -> Result<jsonrpc::Client, ChainError> {
        let (user, pass) = match &self.auth {
            RpcAuth::UserPass(user, pass) => (user.clone(), pass.clone()),
            RpcAuth::CookieFile(path) => {
                let cookie = std::fs::read_to_string(path).map_err(|e| {
                    ChainError::Unreachable(format!("cannot read cookie {}: {e}", path.display()))
                })?;
                let (user, pass) = cookie.trim().split_once(':').ok_or_else(|| {
                    ChainError::Unreachable(format!("malformed cookie {}", path.display()))
                })?;
                (user.to_owned(), pass.to_owned())
            }
        };
        let transport = BitreqHttpTransport::builder()
            .url(&self.url)
            .map_err(|e| ChainError::Unreachable(format!("bad rpc url {}: {e}", self.url)))?
            .timeout(self.timeout)
            .basic_auth(user, Some(pass))
            .build();
        Ok(jsonrpc::Client::with_transport(transport))
    }

    fn with_client<T>(
        &self,
        run: impl Fn(&jsonrpc::Client) -> Result<T, jsonrpc::Error>,
        method: &'static str,
    ) -> Result<T, ChainError> {
        let mut guard = self
            .client
            .lock()
            .map_err(|_| ChainError::Unreachable("rpc client lock poisoned".into()))?;
        // Two attempts: the second with a fresh connection and a re-read cookie, so a
        // restarted node (new cookie, dropped sockets) is picked up without a restart here.
        for attempt in 0..2 {
            if guard.is_none() {
                *guard = Some(self.connect()?);
            }
            let Some(client) = guard.as_ref() else {
                continue;
            };
            match run(client) {
                Ok(value) => return Ok(value),
                Err(jsonrpc::Error::Rpc(e)) => {
                    return Err(ChainError::Rpc {
                        method,
                        code: e.code,
                        message: e.message,
                    })
                }
                Err(e) if attempt == 0 => {
                    tracing::debug!(method, error = %e, "rpc transport error; reconnecting");
                    *guard = None;
                }
                Err(e) => return Err(ChainError::Unreachable(format!("{method}: {e}"))),
            }
        }
        Err(ChainError::Unreachable(format!("{method}: no connection")))
    }

    /// Calls `method` with `params` and decodes the result.
    pub fn call<T: DeserializeOwned>(
        &self,
        method: &'static str,
        params: &[Value],
    ) -> Result<T, ChainError> {
        let raw = serde_json::value::to_raw_value(params).map_err(|e| decode_error(method, e))?;
        self.with_client(
            |client| {
                let request = client.build_request(method, Some(&raw));
                client.send_request(request)?.result::<T>()
            },
            method,
        )
    }

    /// Calls `method` once per parameter list in one JSON-RPC batch (one HTTP round trip).
    ///
    /// The node runs the calls in order; each answer is its own `Result`, in the order of
    /// `params`. Public for tools that need answers the typed methods do not give, e.g.
    /// `milagro bench` timing `getblock` hex without decoding it, or mining many blocks
    /// with `generateblock` in one round trip.
    pub fn batch<T: DeserializeOwned>(
        &self,
        method: &'static str,
        params: &[Vec<Value>],
    ) -> Result<Vec<Result<T, ChainError>>, ChainError> {
        if params.is_empty() {
            return Ok(Vec::new());
        }
        let raws: Vec<Box<RawValue>> = params
            .iter()
            .map(|p| serde_json::value::to_raw_value(p).map_err(|e| decode_error(method, e)))
            .collect::<Result<_, _>>()?;
        let responses = self.with_client(
            |client| {
                let requests: Vec<_> = raws
                    .iter()
                    .map(|raw| client.build_request(method, Some(raw)))
                    .collect();
                client.send_batch(&requests)
            },
            method,
        )?;
        Ok(responses
            .into_iter()
            .map(|response| match response {
                None => Err(ChainError::Decode {
                    method,
                    detail: "missing batch response".into(),
                }),
                Some(response) => response.result::<T>().map_err(|e| match e {
                    jsonrpc::Error::Rpc(e) => ChainError::Rpc {
                        method,
                        code: e.code,
                        message: e.message,
                    },
                    other => decode_error(method, other),
                }),
            })
            .collect())
    }

    /// The chain the node follows.
    pub fn network(&self) -> Result<bitcoin::Network, ChainError> {
        let network = self.ask_network()?;
        let _ = self.chain.set(network);
        Ok(network)
    }

    /// The node's chain as first asked ([`Self::network`] asks every time).
    fn chain(&self) -> Result<bitcoin::Network, ChainError> {
        match self.chain.get() {
            Some(network) => Ok(*network),
            None => self.network(),
        }
    }

    fn ask_network(&self) -> Result<bitcoin::Network, ChainError> {
        let info: Value = self.call("getblockchaininfo", &[])?;
        let chain = info["chain"].as_str().unwrap_or_default();
        bitcoin::Network::from_core_arg(chain).map_err(|e| decode_error("getblockchaininfo", e))
    }
}

fn decode_error(method: &'static str, e: impl std::fmt::Display) -> ChainError {
    ChainError::Decode {
        method,
        detail: e.to_string(),
    }
}

fn decode_hex<T: encode::Decodable>(hex: &str, method: &'static str) -> Result<T, ChainError> {
    encode::deserialize_hex(hex).map_err(|e| decode_error(method, e))
}

fn parse_hash(value: &Value, method: &'static str) -> Result<BlockHash, ChainError> {
    serde_json::from_value(value.clone()).map_err(|e| decode_error(method, e))
}

fn not_found_to_none<T>(result: Result<T, ChainError>) -> Result<Option<T>, ChainError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(ChainError::Rpc {
            code: RPC_INVALID_PARAMETER,
            ..
        }) => Ok(None),
        Err(e) => Err(e),
    }
}

fn missing_to_not_found<T>(result: Result<T, ChainError>, what: String) -> Result<T, ChainError> {
    match result {
        Err(ChainError::Rpc {
            code: RPC_INVALID_ADDRESS_OR_KEY,
            ..
        }) => Err(ChainError::NotFound(what)),
        other => other,
    }
}

impl ChainSource for BitcoindRpc {
    fn tip(&self) -> Result<BlockId, ChainError> {
        let info: Value = self.call("getblockchaininfo", &[])?;
        let height = info["blocks"]
            .as_u64()
            .and_then(|h| u32::try_from(h).ok())
            .ok_or_else(|| decode_error("getblockchaininfo", "no height"))?;
        let hash = parse_hash(&info["bestblockhash"], "getblockchaininfo")?;
        Ok(BlockId { height, hash })
    }

    fn block_hash(&self, height: u32) -> Result<Option<BlockHash>, ChainError> {
        not_found_to_none(self.call("getblockhash", &[json!(height)]))
    }

    fn block_hashes(&self, heights: &[u32]) -> Result<Vec<Option<BlockHash>>, ChainError> {
        let params: Vec<Vec<Value>> = heights.iter().map(|h| vec![json!(h)]).collect();
        self.batch::<BlockHash>("getblockhash", &params)?
            .into_iter()
            .map(not_found_to_none)
            .collect()
    }

    fn block(&self, hash: &BlockHash) -> Result<Block, ChainError> {
        let hex: String = missing_to_not_found(
            self.call("getblock", &[json!(hash.to_string()), json!(0)]),
            format!("block {hash}"),
        )?;
        decode_hex(&hex, "getblock")
    }

    fn blocks(&self, hashes: &[BlockHash]) -> Result<Vec<Block>, ChainError> {
        let params: Vec<Vec<Value>> = hashes
            .iter()
            .map(|h| vec![json!(h.to_string()), json!(0)])
            .collect();
        self.batch::<String>("getblock", &params)?
            .into_iter()
            .zip(hashes)
            .map(|(hex, hash)| {
                decode_hex(
                    &missing_to_not_found(hex, format!("block {hash}"))?,
                    "getblock",
                )
            })
            .collect()
    }

    /// Over REST (`/rest/block/<hash>.bin`): the block's own bytes, no JSON, no hex. A
    /// node without `-rest=1` gives [`ChainError::RestDisabled`].
    fn raw_block(&self, hash: &BlockHash) -> Result<Vec<u8>, ChainError> {
        self.with_rest(|client| client.block(hash))
    }

    /// Over REST, the request for each next block sent before `each` works on the one
    /// before (one connection, one request outstanding). The REST client is held
    /// meanwhile: other threads' `raw_block` calls wait.
    fn raw_blocks(
        &self,
        hashes: &[BlockHash],
        each: &mut dyn FnMut(Result<Vec<u8>, ChainError>) -> ControlFlow<()>,
    ) {
        let walked = self.with_rest(|client| {
            client.blocks(hashes, each);
            Ok(())
        });
        if let Err(error) = walked {
            let _ = each(Err(error));
        }
    }

    fn header(&self, hash: &BlockHash) -> Result<Header, ChainError> {
        let hex: String = missing_to_not_found(
            self.call("getblockheader", &[json!(hash.to_string()), json!(false)]),
            format!("block {hash}"),
        )?;
        decode_hex(&hex, "getblockheader")
    }

    fn headers(&self, hashes: &[BlockHash]) -> Result<Vec<Header>, ChainError> {
        let params: Vec<Vec<Value>> = hashes
            .iter()
            .map(|h| vec![json!(h.to_string()), json!(false)])
            .collect();
        self.batch::<String>("getblockheader", &params)?
            .into_iter()
            .zip(hashes)
            .map(|(hex, hash)| {
                decode_hex(
                    &missing_to_not_found(hex, format!("block {hash}"))?,
                    "getblockheader",
                )
            })
            .collect()
    }

    fn transaction(&self, txid: &Txid, block: &BlockHash) -> Result<Transaction, ChainError> {
        let hex: String = missing_to_not_found(
            self.call(
                "getrawtransaction",
                &[
                    json!(txid.to_string()),
                    json!(false),
                    json!(block.to_string()),
                ],
            ),
            format!("transaction {txid} in block {block}"),
        )?;
        decode_hex(&hex, "getrawtransaction")
    }

    fn indexed_transactions(&self, txids: &[Txid]) -> Result<Vec<Transaction>, ChainError> {
        if txids.is_empty() {
            return Ok(Vec::new());
        }
        let params: Vec<Vec<Value>> = txids
            .iter()
            .map(|t| vec![json!(t.to_string()), json!(false)])
            .collect();
        self.batch::<String>("getrawtransaction", &params)?
            .into_iter()
            .zip(txids)
            .map(|(hex, txid)| match hex {
                Ok(hex) => decode_hex(&hex, "getrawtransaction"),
                // Without a transaction index the node knows only mempool transactions.
                Err(ChainError::Rpc {
                    code: RPC_INVALID_ADDRESS_OR_KEY,
                    message,
                    ..
                }) => Err(ChainError::NotFound(format!(
                    "transaction {txid} (the node must run with -txindex=1: {message})"
                ))),
                Err(e) => Err(e),
            })
            .collect()
    }

    fn merkle_block(&self, txids: &[Txid], block: &BlockHash) -> Result<MerkleBlock, ChainError> {
        let wanted: Vec<String> = txids.iter().map(Txid::to_string).collect();
        let hex: String = missing_to_not_found(
            self.call("gettxoutproof", &[json!(wanted), json!(block.to_string())]),
            format!("transactions {} in block {block}", wanted.join(", ")),
        )?;
        decode_hex(&hex, "gettxoutproof")
    }

    fn broadcast(&self, tx: &Transaction) -> Result<Txid, ChainError> {
        self.call("sendrawtransaction", &[json!(encode::serialize_hex(tx))])
    }
}
