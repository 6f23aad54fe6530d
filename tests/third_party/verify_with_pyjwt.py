"""Verifies access tokens as another team's service would: PyJWT (with `cryptography`), knowing
only the issuer's URL and the audience; no code or secret of this project.

    python verify_with_pyjwt.py ISSUER AUDIENCE < tokens.json

reads a JSON array of tokens and prints a JSON array with, per token, `{"sub": ...}` when it
verifies or `{"error": "<PyJWT's exception>"}` when it does not. The discovery document gives the
JWKS URL and the algorithm; PyJWKClient caches the keys and fetches them again for an unknown kid.
"""

import json
import sys
import urllib.request

import jwt


def main() -> None:
    issuer, audience = sys.argv[1], sys.argv[2]
    with urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration") as response:
        discovery = json.load(response)
    if discovery["issuer"] != issuer:
        sys.exit(f"the discovery document names another issuer: {discovery['issuer']!r}")
    keys = jwt.PyJWKClient(discovery["jwks_uri"], cache_keys=True)
    algorithms = discovery["id_token_signing_alg_values_supported"]
    results = []
    for token in json.load(sys.stdin):
        try:
            key = keys.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=algorithms,
                audience=audience,
                issuer=issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
            results.append({"sub": claims["sub"]})
        except jwt.PyJWTError as error:
            results.append({"error": type(error).__name__})
    print(json.dumps(results))


if __name__ == "__main__":
    main()
