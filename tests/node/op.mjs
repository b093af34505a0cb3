// OpenID providers from outside this project: `oidc-provider` (npm), run by
// tests/tests/e2e/third_party_idp.rs (through tests/src/third_party_op.rs).
//
//   node op.mjs CERT_PEM KEY_PEM SPEC [SPEC...]     SPEC: ALG, ALG+nonce or ALG+nonce=VALUE
//
// Starts one provider per SPEC (its ALG: RS256, ES256...), each on its own loopback port, served over
// HTTPS with the given certificate (the test CA's leaf for 127.0.0.1), each with:
// - its own signing keys (one RSA 2048 and one P-256 key, made now, each with a `kid`), so
//   that the relying party must pick the key by `kid`;
// - one registered client, `milagro-pat`: a public native client (PKCE required, no
//   secret), redirect URI http://127.0.0.1:9/cb (nobody serves it: the test reads the
//   redirect), whose ID tokens are signed with ALG, allowed the authorization-code grant
//   and the device authorization grant (RFC 8628, `features.deviceFlow`: the device asks
//   at /device/auth, the user approves at /device);
// - what the device authorization grant does with the request's `nonce`, chosen per
//   provider: `ALG` alone is oidc-provider as it ships, which drops it (its author: a
//   nonce "makes no sense" in the device flow; Entra ID drops it too); `ALG+nonce` copies
//   it into the ID token, as Keycloak's device grant does; `ALG+nonce=VALUE` is a lying
//   provider that puts VALUE there instead of the nonce the device sent.
// Prints {"issuers": [...]} (in SPEC order) on one line once all listen, then serves until
// stdin closes (the test ends), so that no provider outlives its test.
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const [certFile, keyFile, ...specs] = process.argv.slice(2);
if (!certFile || !keyFile || specs.length === 0) {
  console.error('usage: node op.mjs CERT_PEM KEY_PEM SPEC [SPEC...]');
  process.exit(2);
}
const tls = { cert: readFileSync(certFile), key: readFileSync(keyFile) };

const CLIENT_ID = 'milagro-pat';
const REDIRECT_URI = 'http://127.0.0.1:9/cb';
const ACCOUNTS = new Set(['alice']);

function signingKeys(prefix) {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  return {
    keys: [
      { ...rsa, kid: `${prefix}-rsa`, alg: 'RS256', use: 'sig' },
      { ...ec, kid: `${prefix}-ec`, alg: 'ES256', use: 'sig' },
    ],
  };
}

async function start(spec, n) {
  const [alg, nonceMode] = spec.split('+');
  const lie = nonceMode?.startsWith('nonce=') ? nonceMode.slice('nonce='.length) : undefined;
  const server = https.createServer(tls);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `https://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: CLIENT_ID,
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'urn:ietf:params:oauth:grant-type:device_code'],
      response_types: ['code'],
      redirect_uris: [REDIRECT_URI],
      id_token_signed_response_alg: alg,
    }],
    jwks: signingKeys(`op${n}`),
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    pkce: { required: () => true },
    claims: { openid: ['sub'], profile: ['preferred_username'] },
    features: { devInteractions: { enabled: true }, deviceFlow: { enabled: true } },
    async findAccount(ctx, id) {
      if (!ACCOUNTS.has(id)) return undefined;
      return { accountId: id, async claims() { return { sub: id, preferred_username: id }; } };
    },
  });
  if (nonceMode) {
    // After the device authorization endpoint made its device code: set the code's
    // `nonce` (a property oidc-provider's DeviceCode has, and copies into the ID token of
    // the device_code grant, but never sets from the request) and store it again.
    provider.use(async (ctx, next) => {
      await next();
      const code = ctx.oidc?.entities?.DeviceCode;
      if (ctx.path === '/device/auth' && ctx.status === 200 && code) {
        code.nonce = lie ?? code.params.nonce;
        await code.save();
      }
    });
  }
  server.on('request', provider.callback());
  return { issuer, server };
}

const started = [];
for (const [n, spec] of specs.entries()) {
  started.push(await start(spec, n + 1));
}
console.log(JSON.stringify({ issuers: started.map((s) => s.issuer) }));

process.stdin.resume();
process.stdin.on('end', () => {
  for (const { server } of started) server.close();
  process.exit(0);
});
