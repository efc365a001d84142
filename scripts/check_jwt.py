"""Independent check of a Hatched token: verifies it with PyJWT (not the project's code)
against a JWKS document, requiring EdDSA, the audience, the issuer and API.md's claims.

usage: check_jwt.py JWKS_FILE TOKEN AUDIENCE ISSUER
"""
import json
import sys

import jwt

CLAIMS = {
    "hatched:widget-session": {"iss", "aud", "sub", "bid", "cid", "env", "scope", "sid", "jti", "mode", "iat", "nbf", "exp"},
    "hatched:embed": {"iss", "aud", "sub", "bid", "cid", "env", "jti", "mode", "iat", "nbf", "exp"},
}


def main() -> None:
    jwks_file, token, audience, issuer = sys.argv[1:5]
    with open(jwks_file) as f:
        jwks = jwt.PyJWKSet.from_dict(json.load(f))
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA" and header["typ"] == "JWT", header
    key = next(k for k in jwks.keys if k.key_id == header["kid"])
    claims = jwt.decode(token, key=key.key, algorithms=["EdDSA"], audience=audience, issuer=issuer,
                        options={"require": ["exp", "nbf", "iat", "aud", "iss", "sub"]})
    assert set(claims) == CLAIMS[audience], sorted(claims)
    if audience == "hatched:widget-session":
        assert claims["sid"] == claims["jti"] and claims["mode"] == "interactive", claims
    else:
        assert claims["mode"] == "read-only", claims
    # A tampered token must fail.
    head, body, sig = token.split(".")
    try:
        jwt.decode(f"{head}.{body}.{sig[:-4]}AAAA", key=key.key, algorithms=["EdDSA"], audience=audience, issuer=issuer)
    except jwt.InvalidSignatureError:
        pass
    else:
        raise AssertionError("tampered signature accepted")
    print(f"pyjwt verified {audience} token (kid {header['kid'][:8]}…)")


if __name__ == "__main__":
    main()
