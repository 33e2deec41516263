"""Password hashes Dovecot accepts.

{ARGON2ID} with the parameters `doveadm pw -s ARGON2ID` uses (m=65536 KiB, t=3, p=1);
libsodium, which Dovecot links, creates only p=1 hashes (DC-08 in docs/rules.md).
"""

from __future__ import annotations

from argon2 import PasswordHasher

from provisioner.errors import ProvisionError

_HASHER = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=1)


def hash_password(password: str) -> str:
    if not password:
        raise ProvisionError("empty password: nothing to hash")
    if "\n" in password or "\r" in password:
        raise ProvisionError("a password may not contain line breaks")
    return "{ARGON2ID}" + _HASHER.hash(password)
