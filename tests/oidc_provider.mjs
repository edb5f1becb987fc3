// A real OpenID Connect provider for the desk's single sign-on tests (tests/test_desk_sso.py):
// node-oidc-provider with its development login form (any login name, no password check),
// on 127.0.0.1. Test data only, never a production configuration.
//
// Environment: OIDC_PORT, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URIS (space
// separated), OIDC_ACCOUNTS (JSON: login name -> claims such as email and email_verified).
import Provider from 'oidc-provider';

const port = Number(process.env.OIDC_PORT);
const accounts = JSON.parse(process.env.OIDC_ACCOUNTS || '{}');

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: process.env.OIDC_CLIENT_ID,
    client_secret: process.env.OIDC_CLIENT_SECRET,
    redirect_uris: process.env.OIDC_REDIRECT_URIS.split(' '),
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['preferred_username'],
  },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: id, ...(accounts[id] || {}) };
      },
    };
  },
  pkce: { required: () => true },
  cookies: { keys: ['test-only-cookie-signing-key'] },
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`ready ${provider.issuer}`);
});
