// A real OpenID provider for the bastion's end-to-end test: panva's oidc-provider,
// the client_credentials grant, and JWT access tokens signed with RS256.
//
//   node server.mjs [PORT]      (PORT, else $OIDC_PORT, else 0 = any free port)
//
// Listens on 127.0.0.1 only. The first line on stdout is the port it listens on.
// It exits on SIGTERM/SIGINT, and when its stdin closes, so it never outlives the test.
// Test-only: in-memory storage, a fixed client secret, a signing key made at start.

import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';

import Provider, { errors } from 'oidc-provider';

const CLIENT_ID = 'ci-job-7';
const CLIENT_SECRET = 'test-only-secret-not-for-production';

// Resource servers a client may ask a token for (the `resource` parameter, RFC 8707).
// The bastion expects audience "bastion"; the other one is for the refusal test.
const RESOURCES = {
  'urn:bastion': 'bastion',
  'urn:someone-else': 'someone-else',
};

// The groups claim the bastion's roles match on, per client.
const GROUPS = { [CLIENT_ID]: ['deployers'] };

const port = Number(process.argv[2] ?? process.env.OIDC_PORT ?? 0);
const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 })
  .privateKey.export({ format: 'jwk' });

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
    },
  ],
  jwks: { keys: [{ ...signingKey, kid: 'test-rs256', alg: 'RS256', use: 'sig' }] },
  cookies: { keys: ['test-only-cookie-key'] },
  features: {
    devInteractions: { enabled: false }, // no browser flow here
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // Access tokens are JWTs (RS256) whose `aud` is the resource server's audience.
      async getResourceServerInfo(ctx, resourceIndicator) {
        const audience = RESOURCES[resourceIndicator];
        if (!audience) throw new errors.InvalidTarget();
        return {
          audience,
          scope: '',
          accessTokenFormat: 'jwt',
          accessTokenTTL: 300,
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  // `sub` of a client_credentials token is the client id; add `groups`.
  async extraTokenClaims(ctx, token) {
    return { groups: GROUPS[token.clientId] ?? [] };
  },
});

server.on('request', provider.callback());
process.stdout.write(`${server.address().port}\n`);

const stop = () => {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
