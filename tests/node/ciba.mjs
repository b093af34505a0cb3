// A relying party built on `openid-client` (npm) signing a person in without a browser:
// OpenID Connect CIBA, poll mode. Run by tests/cli/pat_ciba.rs.
//
//   node ciba.mjs ISSUER CLIENT_ID CLIENT_SECRET LOGIN_HINT BINDING_MESSAGE
//
// 1. Discovers the issuer (plain http is allowed: the IdP runs on loopback).
// 2. Asks the backchannel authentication endpoint (client_secret_basic) to authenticate
//    the person LOGIN_HINT names, and prints {"auth_req_id", "expires_in", "interval"} on
//    one line.
// 3. Polls the token endpoint as openid-client does (waiting `interval`, slowing down on
//    slow_down) until the person's device approves, validates the ID token as
//    openid-client does (iss, aud, exp, iat, signature algorithm, no nonce), and prints
//    what it saw as one JSON line.
import * as client from 'openid-client';

const [issuer, clientId, clientSecret, loginHint, bindingMessage] = process.argv.slice(2);

const config = await client.discovery(
  new URL(issuer),
  clientId,
  undefined,
  client.ClientSecretBasic(clientSecret),
  { execute: [client.allowInsecureRequests] },
);
const metadata = config.serverMetadata();

const started = await client.initiateBackchannelAuthentication(config, {
  scope: 'openid profile',
  login_hint: loginHint,
  binding_message: bindingMessage,
});
console.log(JSON.stringify({
  auth_req_id: started.auth_req_id,
  expires_in: started.expires_in,
  interval: started.interval,
}));

const tokens = await client.pollBackchannelAuthenticationGrant(config, started);
console.log(JSON.stringify({
  issuer: metadata.issuer,
  backchannel_token_delivery_modes_supported: metadata.backchannel_token_delivery_modes_supported,
  claims: tokens.claims(),
  token_type: tokens.token_type,
  scope: tokens.scope,
  has_refresh_token: typeof tokens.refresh_token === 'string',
}));
