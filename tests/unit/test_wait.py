"""The suite's polling helper (tests/fixtures/wait.py): a timeout names the last error or value."""

from __future__ import annotations

import itertools

import pytest

from tests.fixtures.wait import WaitTimeout, eventually, eventually_async


def test_an_exception_is_not_yet_and_the_timeout_reports_the_last_one() -> None:
    tries = itertools.count(1)

    def check() -> None:
        raise KeyError(f"try {next(tries)}")

    with pytest.raises(WaitTimeout) as failed:
        eventually(check, 0.2, "the key")
    n = next(tries) - 1
    assert n > 2  # it kept trying
    assert f"waiting for the key (last: KeyError('try {n}'))" in str(failed.value)
    assert isinstance(failed.value.__cause__, KeyError)  # the traceback of the last error shows


def test_the_first_truthy_value_is_returned_after_falsy_ones() -> None:
    values = iter([0, None, [], "here", "later"])
    assert eventually(lambda: next(values), 5, "a value") == "here"


async def test_the_async_form_awaits_a_coroutine_check_and_reports_the_last_value() -> None:
    calls = itertools.count(1)

    async def check() -> int:
        return next(calls) * 0  # falsy every time

    with pytest.raises(WaitTimeout, match=r"timed out after 0.2 s waiting for zero \(last: 0\)"):
        await eventually_async(check, 0.2, "zero")
    assert next(calls) > 3
    values = iter([None, 7])
    assert await eventually_async(lambda: next(values), 5) == 7
