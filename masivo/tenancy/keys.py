"""API key tokens: random, recognisable by prefix, stored only as a SHA-256 hash.

Tokens carry 190 bits of randomness, so a fast unsalted hash is safe: there is nothing to guess.
"""

import hashlib
import secrets

TOKEN_PREFIXES = {"write": "msv_wk_", "secret": "msv_sk_"}
RANDOM_LENGTH = 32  # base62 characters
DISPLAY_PREFIX_LENGTH = 12
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def generate_token(kind: str) -> str:
    return TOKEN_PREFIXES[kind] + "".join(secrets.choice(_ALPHABET) for _ in range(RANDOM_LENGTH))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def display_prefix(token: str) -> str:
    return token[:DISPLAY_PREFIX_LENGTH]


def token_kind(token: str) -> str | None:
    for kind, prefix in TOKEN_PREFIXES.items():
        if token.startswith(prefix) and len(token) == len(prefix) + RANDOM_LENGTH:
            return kind
    return None
