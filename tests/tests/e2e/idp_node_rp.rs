//! An independent, widely used relying party against the IdP: `openid-client` from the
//! npm registry (pinned, installed by this test into `.cache/npm-rp`), driven by
//! `tests/node/rp.mjs` under Node. It discovers the IdP, runs the code flow with PKCE
//! (this test performs the login a browser would), validates the ID token its own way
//! and fetches userinfo. Needs `node` and `npm` on the PATH; never skips. The same over
//! HTTPS is in `https.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use milagro_tests::idp_common;

use idp_common::node_rp::{check_result, npm_rp, sign_in};
use idp_common::IdpWorld;

#[test]
fn openid_client_from_npm_discovers_logs_in_with_pkce_and_validates_the_id_token() {
    let dir = npm_rp();
    let w = IdpWorld::start("");
    let (registered, result) = sign_in(&w, &dir, &[]);
    let result = result.unwrap_or_else(|stderr| panic!("the node relying party failed: {stderr}"));
    check_result(&w, &registered, &result);
}
