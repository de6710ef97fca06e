"""Server-made identifiers keep the shape Kubernetes gives them (uid: RFC 4122 version 4; generated
suffixes: utilrand's alphabet), and do not repeat."""

from __future__ import annotations

import uuid

from runtime.apiserver.admission.create import _RAND_ALPHABET, random_suffix
from runtime.apiserver.registry.objects import new_uid


def test_uid_is_a_random_uuid4() -> None:
    uids = [new_uid() for _ in range(2000)]
    assert len(set(uids)) == len(uids)
    for u in uids:
        parsed = uuid.UUID(u)
        assert str(parsed) == u and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_random_suffix_uses_every_letter_of_the_alphabet_and_only_those() -> None:
    suffixes = [random_suffix() for _ in range(2000)]
    assert all(len(s) == 5 for s in suffixes)
    assert set("".join(suffixes)) == set(_RAND_ALPHABET)
    assert len(set(suffixes)) > 1990
