#!/usr/bin/env python3
"""Microsoft's own client library, MSAL for Python, against the sandbox's Entra ID emulator.

A vendor client is the best judge of an emulator: what MSAL accepts, a real Entra ID client accepts.
Checks, over HTTPS (the sandbox's CA given with --ca-file, nothing else trusted):

  1. client credentials for a `.../.default` scope (and the token served again from MSAL's cache);
  2. the authorization code flow with PKCE (S256) through the emulator's sign-in page, completed as a
     person would (load the page, pick an account); MSAL checks `state` and the id_token's nonce, and
     the id_token is then validated as MSAL asks applications to since 1.38 (it no longer does): its
     signature against the JWKS of the discovery document, issuer, audience, nonce, expiry;
  3. a wrong nonce in the id_token (an emulator fault) is refused by MSAL;
  4. refresh with rotation (acquire_token_by_refresh_token), and a silent call served from the cache;
  5. a wrong client secret refused with invalid_client and AADSTS7000215.

The authority is not a Microsoft host, so MSAL must not ask login.microsoftonline.com to vouch for it:
`instance_discovery=False` (MSAL then reads `{authority}/v2.0/.well-known/openid-configuration` itself).

Run by sandbox/tests/msal_conformance.rs; by hand against a running `cosell sandbox`:

  curl http://127.0.0.1:3100/_control/tls/ca > sandbox-ca.pem
  .venv-conformance/bin/python conformance/msal_entra.py https://127.0.0.1:3100 sandbox-ca.pem

Exit status 0 when every check passed; each check prints one line.
"""

import argparse
import hashlib
import html.parser
import json
import sys
import urllib.parse
import warnings

import jwt
import msal
import requests

# The sandbox's demo tenant and the dashboard's app registration (a confidential client); the Rust test
# passes the values from sandbox/src/entra/mod.rs.
TENANT_ID = "4f1a2b3c-5d6e-4f70-8a9b-0c1d2e3f4a5b"
CLIENT_ID = "0d1e2f3a-4b5c-4d6e-8f70-112233445566"
CLIENT_SECRET = "sandbox-dashboard-secret"
# Registered with the emulator through its control API; nothing listens there: the redirect is read.
REDIRECT_URI = "http://localhost:8400/msal-conformance"
APP_SCOPE = "https://api.partner.microsoft.com/.default"
USER_SCOPE = "https://api.partner.microsoft.com/user_impersonation"
USER = "admin"
USERNAME = "adele@contoso-sandbox.onmicrosoft.com"
TIMEOUT = 20


class Failed(Exception):
    pass


def check(condition, what, detail=""):
    if not condition:
        raise Failed(f"{what}{': ' + str(detail) if detail else ''}")


def ok(what):
    print(f"ok: {what}", flush=True)


class FormParser(html.parser.HTMLParser):
    """The first form of a page: its action and its named inputs, as a browser would submit them."""

    def __init__(self):
        super().__init__()
        self.action = None
        self.fields = []
        self.users = []
        self._in_form = False
        self._done = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if self._done:
            return
        if tag == "form":
            self._in_form = True
            self.action = attrs.get("action")
        elif self._in_form and tag == "input" and attrs.get("name"):
            self.fields.append((attrs["name"], attrs.get("value", "")))
        elif self._in_form and tag == "button" and attrs.get("name") == "user":
            self.users.append(attrs.get("value"))

    def handle_endtag(self, tag):
        if tag == "form" and self._in_form:
            self._in_form = False
            self._done = True


class Sandbox:
    def __init__(self, base_url, ca_file):
        self.base_url = base_url.rstrip("/")
        parsed = urllib.parse.urlsplit(self.base_url)
        check(parsed.scheme == "https", "the sandbox's base URL is https", self.base_url)
        # The control API answers plain HTTP on the same port.
        self.control_url = f"http://{parsed.netloc}/_control"
        self.http = requests.Session()
        self.http.verify = ca_file
        # Loopback only: no proxy from the environment.
        self.http.trust_env = False

    def control(self, path, body):
        r = self.http.post(f"{self.control_url}{path}", json=body, timeout=TIMEOUT)
        check(r.ok, f"control call {path}", f"{r.status_code} {r.text}")

    def app(self, args, secret=None):
        return msal.ConfidentialClientApplication(
            args.client_id,
            client_credential=secret or args.client_secret,
            authority=f"{self.base_url}/{args.tenant}",
            http_client=self.http,
            # Not a Microsoft host: no instance discovery at login.microsoftonline.com.
            instance_discovery=False,
            # No broker, no region detection: nothing but the authority is called.
            enable_pii_log=False,
        )

    def pick(self, auth_uri, user):
        """Loads the sign-in page and picks `user`, as a person would; returns the redirect back."""
        page = self.http.get(auth_uri, timeout=TIMEOUT, allow_redirects=False)
        check(page.status_code == 200, "the sign-in page loads", f"{page.status_code} {page.text[:300]}")
        form = FormParser()
        form.feed(page.text)
        check(user in form.users, f"the page lists {user}", form.users)
        action = urllib.parse.urljoin(auth_uri, form.action)
        r = self.http.post(
            action,
            data=form.fields + [("user", user)],
            timeout=TIMEOUT,
            allow_redirects=False,
        )
        check(r.status_code in (302, 303), "picking an account redirects back", f"{r.status_code} {r.text[:300]}")
        return r.headers["location"]


def auth_response(location):
    """The redirect's query, as a web app hands it to MSAL."""
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))


def validate_id_token(sandbox, args, id_token, nonce):
    """What MSAL (>= 1.38) leaves to the application: the id_token's signature, issuer, audience,
    nonce and expiry, against the discovery document the authority publishes."""
    discovery = sandbox.http.get(
        f"{sandbox.base_url}/{args.tenant}/v2.0/.well-known/openid-configuration",
        timeout=TIMEOUT,
    ).json()
    jwks = sandbox.http.get(discovery["jwks_uri"], timeout=TIMEOUT).json()
    header = jwt.get_unverified_header(id_token)
    check(header.get("alg") == "RS256", "the id_token is RS256", header)
    keys = {k.key_id: k for k in jwt.PyJWKSet.from_dict(jwks).keys}
    check(header.get("kid") in keys, "the id_token's key is in the JWKS", header)
    claims = jwt.decode(
        id_token,
        keys[header["kid"]].key,
        algorithms=["RS256"],
        audience=args.client_id,
        issuer=discovery["issuer"],
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )
    expected = hashlib.sha256(nonce.encode("ascii")).hexdigest()
    check(claims.get("nonce") == expected, "the id_token carries MSAL's nonce (hashed)", claims.get("nonce"))
    return claims


def run(args):
    sandbox = Sandbox(args.base_url, args.ca_file)
    print(f"msal {msal.__version__} against {sandbox.base_url}", flush=True)
    sandbox.control("/entra/redirect-uris", {"client_id": args.client_id, "redirect_uri": REDIRECT_URI})

    # 1. Client credentials.
    app = sandbox.app(args)
    check(
        app.authority.token_endpoint == f"{sandbox.base_url}/{args.tenant}/oauth2/v2.0/token",
        "MSAL found the token endpoint through discovery",
        app.authority.token_endpoint,
    )
    result = app.acquire_token_for_client(scopes=[APP_SCOPE])
    check("access_token" in result, "client credentials give an access token", json.dumps(result))
    check(result.get("token_type", "").lower() == "bearer", "a Bearer token", result.get("token_type"))
    check("refresh_token" not in result, "no refresh token for client credentials")
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    check(claims.get("aud") == "https://api.partner.microsoft.com", "the app token's audience", claims)
    check(claims.get("idtyp") == "app" and claims.get("appid") == args.client_id, "an app-only token", claims)
    again = app.acquire_token_for_client(scopes=[APP_SCOPE])
    check(again.get("token_source") == "cache", "the second call is served from MSAL's cache", again.get("token_source"))
    ok("client credentials (.default), cached by expires_in")

    # 2. Authorization code with PKCE, through the sign-in page.
    flow = app.initiate_auth_code_flow(scopes=[USER_SCOPE], redirect_uri=REDIRECT_URI)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(flow["auth_uri"]).query))
    check(
        flow["auth_uri"].startswith(f"{sandbox.base_url}/{args.tenant}/oauth2/v2.0/authorize"),
        "MSAL sends the browser to the emulator's authorize endpoint",
        flow["auth_uri"],
    )
    check(query.get("code_challenge_method") == "S256", "PKCE S256", query)
    location = sandbox.pick(flow["auth_uri"], USER)
    check(location.startswith(REDIRECT_URI), "back at the redirect URI", location)
    response = auth_response(location)
    check(response.get("state") == flow["state"], "the state is echoed", response)
    result = app.acquire_token_by_auth_code_flow(flow, response)
    check("access_token" in result, "the code is redeemed", json.dumps(result))
    for field in ("refresh_token", "id_token"):
        check(field in result, f"the answer has a {field}", sorted(result))
    id_claims = validate_id_token(sandbox, args, result["id_token"], flow["nonce"])
    check(id_claims.get("preferred_username") == USERNAME, "the id_token names the user", id_claims)
    check(id_claims.get("tid") == args.tenant, "the id_token names the tenant", id_claims)
    access = jwt.decode(result["access_token"], options={"verify_signature": False})
    check(access.get("aud") == "https://api.partner.microsoft.com", "the user token's audience", access)
    check(USER_SCOPE.rsplit("/", 1)[1] in access.get("scp", "").split(), "the delegated scope", access)
    ok("authorization code + PKCE via the sign-in page; id_token signature, issuer, audience, nonce verified")

    accounts = app.get_accounts(username=USERNAME)
    check(len(accounts) == 1, "MSAL keeps the signed-in account", app.get_accounts())
    silent = app.acquire_token_silent([USER_SCOPE], account=accounts[0])
    check(silent and silent.get("token_source") == "cache", "a silent call is served from the cache", silent)
    ok("account cached; acquire_token_silent served from the cache")

    # 3. A wrong nonce is refused by MSAL.
    sandbox.control("/entra/faults", {"next_id_token": "wrong_nonce"})
    flow = app.initiate_auth_code_flow(scopes=[USER_SCOPE], redirect_uri=REDIRECT_URI)
    response = auth_response(sandbox.pick(flow["auth_uri"], USER))
    try:
        refused = app.acquire_token_by_auth_code_flow(flow, response)
    except RuntimeError as e:  # what MSAL raises for a nonce mismatch
        refused = {"error": "refused", "error_description": str(e)}
    check("access_token" not in refused and "nonce" in str(refused), "MSAL refuses a wrong nonce", refused)
    sandbox.control("/entra/faults", {})
    ok("an id_token with another nonce is refused by MSAL")

    # 4. Refresh, rotated.
    first_refresh = result["refresh_token"]
    refreshed = app.acquire_token_by_refresh_token(first_refresh, scopes=[USER_SCOPE])
    check("access_token" in refreshed, "the refresh token is redeemed", json.dumps(refreshed))
    check(refreshed.get("refresh_token") not in (None, first_refresh), "the refresh token is rotated")
    check(refreshed["access_token"] != result["access_token"], "a new access token")
    ok("refresh token redeemed and rotated")

    # 5. A wrong client secret.
    wrong = sandbox.app(args, secret="not-the-secret")
    refused = wrong.acquire_token_for_client(scopes=[APP_SCOPE])
    check(refused.get("error") == "invalid_client", "a wrong secret is invalid_client", json.dumps(refused))
    check(7000215 in refused.get("error_codes", []), "error_codes names 7000215", refused.get("error_codes"))
    check(
        refused.get("error_description", "").startswith("AADSTS7000215:"),
        "the description starts with AADSTS7000215",
        refused.get("error_description"),
    )
    ok("a wrong client secret is refused: invalid_client, AADSTS7000215")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base_url", help="the sandbox's emulated APIs, https://127.0.0.1:PORT")
    parser.add_argument("ca_file", help="the sandbox's TLS CA, PEM (GET /_control/tls/ca)")
    parser.add_argument("--tenant", default=TENANT_ID)
    parser.add_argument("--client-id", default=CLIENT_ID)
    parser.add_argument("--client-secret", default=CLIENT_SECRET)
    args = parser.parse_args()
    # MSAL recommends response_mode=form_post for web apps; the query mode used here is fine for a test.
    warnings.simplefilter("ignore", UserWarning)
    try:
        run(args)
    except Failed as e:
        print(f"FAIL: {e}", flush=True)
        return 1
    print("all MSAL conformance checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
