"""What a search box's text becomes: quoted FTS5 phrases, never operators."""

from __future__ import annotations

from kibitz.services.chat.search.query import MAX_TERMS, Term, parse_query
from kibitz.services.chat.search.service import plain_snippet


def test_words_and_phrases_become_quoted_terms_the_last_word_a_prefix() -> None:
    query = parse_query('water "spider plant" kube')
    assert query.terms == (Term("water"), Term("spider plant"), Term("kube", prefix=True))
    assert query.fts5() == 'content : ("water" AND "spider plant" AND "kube"*)'


def test_operators_and_quotes_stay_words() -> None:
    assert (
        parse_query("NEAR(a b) OR c*").fts5() == 'content : ("NEAR(a" AND "b)" AND "OR" AND "c*")'
    )
    assert parse_query('say "hi').terms == (Term("say"), Term("hi"))
    assert parse_query("owner:x").fts5() == 'content : ("owner:x")'


def test_text_without_letters_or_digits_is_no_query() -> None:
    assert parse_query('" * - ( ) ""').empty
    assert parse_query("\x00\x01").empty


def test_a_query_keeps_at_most_sixteen_terms() -> None:
    assert len(parse_query(" ".join(f"w{i}" for i in range(40))).terms) == MAX_TERMS


def test_snippet_markers_become_offsets() -> None:
    text, highlights = plain_snippet("a \ue000cactus\ue001 and \ue000cacti\ue001!")
    assert text == "a cactus and cacti!"
    assert [text[h.start : h.end] for h in highlights] == ["cactus", "cacti"]
