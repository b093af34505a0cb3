// A relying party built on `openid-client` (npm), run by tests/tests/idp_node_rp.rs.
//
//   node rp.mjs ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI
//
// 1. Discovers the issuer (plain http is allowed: the IdP runs on loopback in one test; the
//    HTTPS test gives the test CA in NODE_EXTRA_CA_CERTS).
// 2. Prints {"authorize_url": …} on one line and reads the redirect the browser landed on
//    (one line on stdin; the Rust test performs the login).
// 3. Redeems the code with PKCE (client_secret_basic), validates the ID token as
//    openid-client does (signature from the JWKS, iss, aud, exp, iat, nonce, state, iss
//    parameter of the response), fetches userinfo, and prints what it saw as one JSON line.
import * as client from 'openid-client';
import { createInterface } from 'node:readline';

const [issuer, clientId, clientSecret, redirectUri] = process.argv.slice(2);

const config = await client.discovery(
  new URL(issuer),
  clientId,
  undefined,
  client.ClientSecretBasic(clientSecret),
  { execute: [client.allowInsecureRequests] },
);
const metadata = config.serverMetadata();

const codeVerifier = client.randomPKCECodeVerifier();
const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier);
const nonce = client.randomNonce();
const state = client.randomState();
const authorizeUrl = client.buildAuthorizationUrl(config, {
  redirect_uri: redirectUri,
  scope: 'openid profile email',
  code_challenge: codeChallenge,
  code_challenge_method: 'S256',
  nonce,
  state,
});
console.log(JSON.stringify({ authorize_url: authorizeUrl.href }));

const lines = createInterface({ input: process.stdin });
const landed = await new Promise((resolve) => lines.once('line', resolve));
lines.close();

const tokens = await client.authorizationCodeGrant(config, new URL(landed), {
  pkceCodeVerifier: codeVerifier,
  expectedNonce: nonce,
  expectedState: state,
  idTokenExpected: true,
});
const claims = tokens.claims();
const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
console.log(JSON.stringify({
  issuer: metadata.issuer,
  milagro_birth_certificate_digest: metadata.milagro_birth_certificate_digest,
  milagro_anchor_txid: metadata.milagro_anchor_txid,
  claims,
  userinfo,
}));
