//! The roles `init` sets up and the networks it sets them up for, with each one's defaults.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use milagro_service::identity::PartyKind;

/// A service role: what `milagro ROLE serve` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceRole {
    /// A Trusted Bitcoin Server.
    Tbs,
    /// An OpenID Connect provider with an anchored identity.
    Idp,
    /// A Distributed Trust Authority.
    Dta,
    /// An M-Pin authentication server.
    Authserver,
}

impl ServiceRole {
    /// Every role, in the order a network starts them.
    pub const ALL: [ServiceRole; 4] = [Self::Tbs, Self::Idp, Self::Dta, Self::Authserver];

    /// The role's command and file name (`tbs`, `idp`, `dta`, `authserver`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Tbs => "tbs",
            Self::Idp => "idp",
            Self::Dta => "dta",
            Self::Authserver => "authserver",
        }
    }

    /// Its role in the Birth Certificate and the name of its key file.
    pub fn kind(self) -> PartyKind {
        match self {
            Self::Tbs => milagro_tbs::identity::KIND,
            Self::Idp => milagro_idp::KIND,
            Self::Dta => milagro_dta::KIND,
            Self::Authserver => milagro_authserver::KIND,
        }
    }

    /// The commented example configuration `init` fills in.
    pub fn template(self) -> &'static str {
        match self {
            Self::Tbs => milagro_tbs::config::EXAMPLE_CONFIG,
            Self::Idp => milagro_idp::config::EXAMPLE_CONFIG,
            Self::Dta => milagro_dta::config::EXAMPLE_CONFIG,
            Self::Authserver => milagro_authserver::config::EXAMPLE_CONFIG,
        }
    }

    /// Where it listens unless told: loopback (a reverse proxy or `[tls]` faces the
    /// world), one port per role so that one machine can run them all.
    pub fn default_listen(self) -> SocketAddr {
        let port = match self {
            Self::Tbs => 8080,
            Self::Idp => 8081,
            Self::Dta => 8091,
            Self::Authserver => 8093,
        };
        SocketAddr::from((Ipv4Addr::LOCALHOST, port))
    }

    /// Whether it has an operator admin API (`[admin] token_sha256`).
    pub fn has_admin_api(self) -> bool {
        !matches!(self, Self::Dta)
    }

    /// The human-readable name of the role, for messages.
    pub fn title(self) -> &'static str {
        match self {
            Self::Tbs => "TBS",
            Self::Idp => "IdP",
            Self::Dta => "D-TA",
            Self::Authserver => "authentication server",
        }
    }
}

impl std::fmt::Display for ServiceRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The Bitcoin network a service follows and anchors on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Chain {
    /// A private chain (development, tests, `milagro network up`).
    Regtest,
    /// The default signet.
    Signet,
    /// Testnet 4.
    Testnet4,
    /// Bitcoin itself.
    Bitcoin,
}

impl Chain {
    /// Its name in the configuration's `[node] network` (Bitcoin Core's `-chain`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Regtest => "regtest",
            Self::Signet => "signet",
            Self::Testnet4 => "testnet4",
            Self::Bitcoin => "bitcoin",
        }
    }

    /// The chain of a rust-bitcoin network; `None` for one `init` does not offer (the
    /// old testnet 3).
    pub fn of(network: bitcoin::Network) -> Option<Self> {
        [Self::Regtest, Self::Signet, Self::Testnet4, Self::Bitcoin]
            .into_iter()
            .find(|chain| chain.network() == network)
    }

    /// The rust-bitcoin network (for addresses).
    pub fn network(self) -> bitcoin::Network {
        match self {
            Self::Regtest => bitcoin::Network::Regtest,
            Self::Signet => bitcoin::Network::Signet,
            Self::Testnet4 => bitcoin::Network::Testnet4,
            Self::Bitcoin => bitcoin::Network::Bitcoin,
        }
    }

    /// Bitcoin Core's default RPC port on this network.
    pub fn rpc_port(self) -> u16 {
        match self {
            Self::Regtest => 18443,
            Self::Signet => 38332,
            Self::Testnet4 => 48332,
            Self::Bitcoin => 8332,
        }
    }

    /// Bitcoin Core's default cookie file for this network, under `home`'s `.bitcoin`.
    pub fn default_cookie(self, home: &std::path::Path) -> PathBuf {
        let datadir = home.join(".bitcoin");
        match self {
            Self::Bitcoin => datadir.join(".cookie"),
            other => datadir.join(other.name()).join(".cookie"),
        }
    }

    /// Confirmations a peer's anchor needs before it is admitted: final (6) on a public
    /// network; 1 on regtest, where the only miner is the operator.
    pub fn min_peer_depth(self) -> u32 {
        match self {
            Self::Regtest => 1,
            _ => 6,
        }
    }

    /// Whether a public URL may be left to `init` (a private chain only: on a public one
    /// the URL goes into the anchored certificate for good).
    pub fn allows_default_url(self) -> bool {
        self == Self::Regtest
    }
}

impl std::fmt::Display for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
