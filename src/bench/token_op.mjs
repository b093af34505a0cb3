// `oidc-provider` (npm) for `milagro bench token` (src/bench/token.rs): the provider the
// IdP's token endpoint is measured against, as it ships, on plain HTTP on loopback.
//
//   BENCH_CLIENT_SECRET=... NODE_ENV=production node token_op.mjs CLIENT_ID REDIRECT_URI
//
// One client, CLIENT_ID: confidential (`client_secret_basic`, the secret from the
// environment, not the command line), the authorization-code grant only, REDIRECT_URI, ID
// tokens signed ES256 (`id_token_signed_response_alg`) with a P-256 key made now. PKCE is
// required for every client. Codes, grants and sessions live in oidc-provider's own
// in-memory adapter (its default).
//
// The only addition is the interaction: the login and consent prompts are answered here,
// for the account `alice`, through oidc-provider's documented interaction API
// (`interactionDetails`, a `Grant` of the scopes asked, `interactionFinished`), where a
// deployment would show its own pages. The bench's first authorization request goes
// through them and leaves a session; later ones get their code straight away. Every code
// is a real one of the authorization endpoint, and `/token` redeems it with its normal
// client authentication and PKCE checks.
//
// Prints {"issuer": ...} on one line once it listens, then serves until stdin closes.
import http from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const [clientId, redirectUri] = process.argv.slice(2);
const clientSecret = process.env.BENCH_CLIENT_SECRET;
if (!clientId || !redirectUri || !clientSecret) {
  console.error('usage: BENCH_CLIENT_SECRET=... node token_op.mjs CLIENT_ID REDIRECT_URI');
  process.exit(2);
}
const ACCOUNT = 'alice';

const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;
const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: [redirectUri],
    id_token_signed_response_alg: 'ES256',
  }],
  jwks: { keys: [{ ...ec, kid: 'bench-ec', alg: 'ES256', use: 'sig' }] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  pkce: { required: () => true },
  claims: { openid: ['sub'] },
  features: { devInteractions: { enabled: false } },
  async findAccount(ctx, id) {
    if (id !== ACCOUNT) return undefined;
    return { accountId: id, async claims() { return { sub: id }; } };
  },
});
// Quiet: the bench reads stdout for the start line only.
provider.on('server_error', (ctx, error) => console.error('oidc-provider:', error));

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const result = {};
  if (details.prompt.name === 'login') {
    result.login = { accountId: ACCOUNT };
  } else {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    const missing = details.prompt.details.missingOIDCScope;
    if (missing) grant.addOIDCScope(missing.join(' '));
    result.consent = { grantId: await grant.save() };
  }
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
}

const callback = provider.callback();
server.on('request', (req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((error) => {
      console.error('interaction:', error);
      res.statusCode = 500;
      res.end();
    });
  } else {
    callback(req, res);
  }
});
console.log(JSON.stringify({ issuer }));

process.stdin.resume();
process.stdin.on('end', () => {
  server.close();
  process.exit(0);
});
