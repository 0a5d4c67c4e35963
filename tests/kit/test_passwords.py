"""argon2id hashing with OWASP parameters, off the event loop."""

from __future__ import annotations

import asyncio

from argon2 import extract_parameters
from argon2.low_level import Type

from kibitz.kit.passwords import hash_password, verify_password


async def test_hashes_are_argon2id_with_owasp_parameters() -> None:
    hashed = await hash_password("correct horse battery staple")
    parameters = extract_parameters(hashed)
    assert parameters.type is Type.ID
    assert parameters.memory_cost >= 19 * 1024
    assert parameters.time_cost >= 2
    assert parameters.parallelism == 1
    assert hashed != await hash_password("correct horse battery staple")  # salted


async def test_verify_accepts_the_password_and_refuses_others() -> None:
    hashed = await hash_password("пароль 密码 😀 mot de passe")
    assert await verify_password(hashed, "пароль 密码 😀 mot de passe")
    assert not await verify_password(hashed, "пароль 密码 😀 mot de passe ")
    assert not await verify_password(hashed, "")


async def test_verify_without_a_hash_or_with_a_broken_one_answers_false() -> None:
    assert not await verify_password(None, "kibitz-dummy-password-for-timing")
    assert not await verify_password("", "anything")
    assert not await verify_password("$argon2id$v=19$broken", "anything")
    assert not await verify_password("plain-text", "plain-text")


async def test_hashing_leaves_the_event_loop_free() -> None:
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.gather(*(hash_password(f"password number {n}") for n in range(4)))
    done.set()
    await task
    # Four hashes take tens of milliseconds; the loop kept running other tasks meanwhile.
    assert ticks > 4
