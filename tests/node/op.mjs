// OpenID providers from outside this project: `oidc-provider` (npm), run by
// tests/tests/e2e/third_party_idp.rs (through tests/src/third_party_op.rs).
//
//   node op.mjs CERT_PEM KEY_PEM ALG [ALG...]
//
// Starts one provider per ALG (RS256, ES256...), each on its own loopback port, served over
// HTTPS with the given certificate (the test CA's leaf for 127.0.0.1), each with:
// - its own signing keys (one RSA 2048 and one P-256 key, made now, each with a `kid`), so
//   that the relying party must pick the key by `kid`;
// - one registered client, `milagro-pat`: a public native client (PKCE required, no
//   secret), redirect URI http://127.0.0.1:9/cb (nobody serves it: the test reads the
//   redirect), whose ID tokens are signed with ALG;
// - one account, `alice`; the provider's own development login and consent pages
//   (devInteractions), which the test fills in as a browser would.
// Prints {"issuers": [...]} (in ALG order) on one line once all listen, then serves until
// stdin closes (the test ends), so that no provider outlives its test.
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const [certFile, keyFile, ...algs] = process.argv.slice(2);
if (!certFile || !keyFile || algs.length === 0) {
  console.error('usage: node op.mjs CERT_PEM KEY_PEM ALG [ALG...]');
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

async function start(alg, n) {
  const server = https.createServer(tls);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `https://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: CLIENT_ID,
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: [REDIRECT_URI],
      id_token_signed_response_alg: alg,
    }],
    jwks: signingKeys(`op${n}`),
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    pkce: { required: () => true },
    claims: { openid: ['sub'], profile: ['preferred_username'] },
    features: { devInteractions: { enabled: true } },
    async findAccount(ctx, id) {
      if (!ACCOUNTS.has(id)) return undefined;
      return { accountId: id, async claims() { return { sub: id, preferred_username: id }; } };
    },
  });
  server.on('request', provider.callback());
  return { issuer, server };
}

const started = [];
for (const [n, alg] of algs.entries()) {
  started.push(await start(alg, n + 1));
}
console.log(JSON.stringify({ issuers: started.map((s) => s.issuer) }));

process.stdin.resume();
process.stdin.on('end', () => {
  for (const { server } of started) server.close();
  process.exit(0);
});
