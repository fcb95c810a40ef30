"""The subset of the QuickBooks Online query language that the sandbox understands.

``SELECT * | count(*) FROM Invoice|Payment|CreditMemo [WHERE cond AND cond ...] [ORDERBY f [ASC|DESC], ...]
[STARTPOSITION n] [MAXRESULTS n]``, conditions ``field op 'value'`` with ``= < > <= >= LIKE``
or ``field IN ('a', 'b')``. Keywords and names are case-insensitive; values are quoted with
``'`` and a backslash escapes the next character. Every syntax problem raises
:class:`QueryError`, which the server answers with a ValidationFault.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, tzinfo
from decimal import Decimal, InvalidOperation
from enum import Enum
from functools import lru_cache

MAX_RESULTS_LIMIT = 1000
DEFAULT_MAX_RESULTS = 100
ENTITIES = ("Invoice", "Payment", "CreditMemo")
KNOWN_ENTITIES = ("Customer", "Bill", "Estimate", "Item", "Account")


class Kind(Enum):
    STRING = "string"
    ID = "id"
    MONEY = "money"
    DATE = "date"
    DATETIME = "datetime"


FIELDS: dict[str, tuple[str, Kind]] = {
    name.lower(): (name, kind)
    for name, kind in (
        ("Id", Kind.ID),
        ("DocNumber", Kind.STRING),
        ("CustomerRef", Kind.STRING),
        ("Balance", Kind.MONEY),
        ("TotalAmt", Kind.MONEY),
        ("TxnDate", Kind.DATE),
        ("DueDate", Kind.DATE),
        ("MetaData.CreateTime", Kind.DATETIME),
        ("MetaData.LastUpdatedTime", Kind.DATETIME),
    )
}

_META = (
    "Id",
    "CustomerRef",
    "TxnDate",
    "TotalAmt",
    "MetaData.CreateTime",
    "MetaData.LastUpdatedTime",
)
ENTITY_FIELDS: dict[str, frozenset[str]] = {
    "Invoice": frozenset(name for name, _ in FIELDS.values()),
    "Payment": frozenset(_META),
    "CreditMemo": frozenset((*_META, "DocNumber", "Balance")),
}
"""The properties each entity can be filtered and ordered by."""

Value = str | int | Decimal | date | datetime


class QueryError(Exception):
    """The statement is not valid: answered with a ValidationFault (code 4000)."""

    def __init__(self, detail: str, *, message: str = "Error parsing query") -> None:
        super().__init__(detail)
        self.message = message
        self.detail = detail


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    """One of ``= < > <= >= IN LIKE``."""
    values: tuple[Value, ...]

    def matches(self, value: Value | None) -> bool:
        if value is None:
            return False
        if self.op == "IN":
            return value in self.values
        target = self.values[0]
        if self.op == "LIKE":
            assert isinstance(value, str) and isinstance(target, str)
            return _like_regex(target).fullmatch(value) is not None
        return _compare(self.op, value, target)


@dataclass(frozen=True)
class Query:
    entity: str
    count: bool
    where: tuple[Condition, ...] = ()
    order_by: tuple[tuple[str, bool], ...] = ()
    """(field, descending) pairs."""
    start_position: int = 1
    max_results: int = DEFAULT_MAX_RESULTS


def _compare(op: str, left: Value, right: Value) -> bool:
    # Both sides were parsed to the field's kind, so they compare with each other.
    lhs, rhs = (left, right)
    if op == "=":
        return lhs == rhs
    if op == "<":
        return lhs < rhs  # type: ignore[operator]
    if op == ">":
        return lhs > rhs  # type: ignore[operator]
    if op == "<=":
        return lhs <= rhs  # type: ignore[operator]
    return lhs >= rhs  # type: ignore[operator]


@lru_cache(maxsize=256)
def _like_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("%")), re.DOTALL)


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:\\.|[^'\\])*')
    | (?P<number>-?\d+)
    | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
    | (?P<op><=|>=|<>|!=|=|<|>)
    | (?P<punct>[(),*])
    )""",
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.lastgroup is None:
            start = len(text) - len(text[pos:].lstrip())
            snippet = text[start : start + 10]
            if snippet.startswith("'"):
                raise QueryError(f"QueryParserError: Unterminated string at column {start + 1}")
            raise QueryError(
                f'QueryParserError: Encountered "{snippet}" at line 1, column {start + 1}.'
            )
        tokens.append(
            _Token(match.lastgroup, match.group(match.lastgroup), match.start(match.lastgroup))
        )
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str, tz: tzinfo) -> None:
        self.tokens = _tokenize(text)
        self.index = 0
        self.tz = tz
        self.entity_name = "Invoice"

    # -- cursor ---------------------------------------------------------------------
    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def next(self, expecting: str) -> _Token:
        token = self.peek()
        if token is None:
            raise QueryError(f'QueryParserError: Encountered "<EOF>". Was expecting {expecting}.')
        self.index += 1
        return token

    def unexpected(self, token: _Token, expecting: str) -> QueryError:
        return QueryError(
            f'QueryParserError: Encountered "{token.text}" at line 1, column {token.pos + 1}. '
            f"Was expecting {expecting}."
        )

    def keyword(self, *words: str) -> str | None:
        """Consume the next token when it is one of ``words`` (case-insensitive)."""
        token = self.peek()
        if token is not None and token.kind == "name" and token.text.upper() in words:
            self.index += 1
            return token.text.upper()
        return None

    def expect_keyword(self, word: str) -> None:
        token = self.next(word)
        if token.kind != "name" or token.text.upper() != word:
            raise self.unexpected(token, word)

    def expect_punct(self, char: str) -> None:
        token = self.next(f'"{char}"')
        if token.text != char:
            raise self.unexpected(token, f'"{char}"')

    # -- grammar --------------------------------------------------------------------
    def parse(self) -> Query:
        self.expect_keyword("SELECT")
        count = self.select_list()
        self.expect_keyword("FROM")
        entity = self.entity_name = self.entity()
        where: tuple[Condition, ...] = ()
        if self.keyword("WHERE"):
            where = self.conditions()
        order_by: tuple[tuple[str, bool], ...] = ()
        start, maximum = 1, DEFAULT_MAX_RESULTS
        seen: set[str] = set()
        while (word := self.keyword("ORDERBY", "ORDER", "STARTPOSITION", "MAXRESULTS")) is not None:
            if word == "ORDER":
                self.expect_keyword("BY")
                word = "ORDERBY"
            if word in seen:
                raise QueryError(f"QueryParserError: {word} given twice")
            seen.add(word)
            if word == "ORDERBY":
                order_by = self.order_list()
            elif word == "STARTPOSITION":
                start = self.integer("STARTPOSITION")
            else:
                maximum = self.integer("MAXRESULTS")
        token = self.peek()
        if token is not None:
            raise self.unexpected(token, "WHERE, ORDERBY, STARTPOSITION, MAXRESULTS or <EOF>")
        if maximum > MAX_RESULTS_LIMIT:
            raise QueryError(
                f"QueryValidationError: MAXRESULTS must not exceed {MAX_RESULTS_LIMIT}",
                message="Invalid query",
            )
        return Query(entity, count, where, order_by, start, maximum)

    def select_list(self) -> bool:
        token = self.next("* or count(*)")
        if token.text == "*":
            return False
        if token.kind == "name" and token.text.upper() == "COUNT":
            self.expect_punct("(")
            self.expect_punct("*")
            self.expect_punct(")")
            return True
        if token.kind == "name":
            raise QueryError(
                "QueryValidationError: selecting individual properties is not supported; "
                "use SELECT *",
                message="Invalid query",
            )
        raise self.unexpected(token, "* or count(*)")

    def entity(self) -> str:
        token = self.next("an entity name")
        if token.kind != "name":
            raise self.unexpected(token, "an entity name")
        for name in ENTITIES:
            if token.text.lower() == name.lower():
                return name
        if token.text.lower() in (e.lower() for e in KNOWN_ENTITIES):
            raise QueryError(f"QueryValidationError: entity {token.text} is not supported here")
        raise QueryError(f"QueryParserError: Invalid entity name: {token.text}")

    def field(self) -> tuple[str, Kind]:
        token = self.next("a property name")
        if token.kind != "name":
            raise self.unexpected(token, "a property name")
        known = FIELDS.get(token.text.lower())
        if known is None or known[0] not in ENTITY_FIELDS[self.entity_name]:
            raise QueryError(
                f"QueryValidationError: property '{token.text}' is not queryable",
                message="Invalid query",
            )
        return known

    def conditions(self) -> tuple[Condition, ...]:
        found = [self.condition()]
        while self.keyword("AND"):
            found.append(self.condition())
        if (token := self.peek()) is not None and token.text.upper() == "OR":
            raise QueryError("QueryParserError: OR is not supported")
        return tuple(found)

    def condition(self) -> Condition:
        name, kind = self.field()
        token = self.next("an operator")
        if token.kind == "name" and token.text.upper() == "IN":
            return Condition(name, "IN", self.value_list(kind))
        if token.kind == "name" and token.text.upper() == "LIKE":
            if kind is not Kind.STRING:
                raise QueryError(f"QueryValidationError: LIKE is not supported on {name}")
            return Condition(name, "LIKE", (self.value(kind),))
        if token.kind != "op" or token.text in ("<>", "!="):
            raise self.unexpected(token, "one of = < > <= >= IN LIKE")
        return Condition(name, token.text, (self.value(kind),))

    def value_list(self, kind: Kind) -> tuple[Value, ...]:
        self.expect_punct("(")
        values = [self.value(kind)]
        while (token := self.next('"," or ")"')).text == ",":
            values.append(self.value(kind))
        if token.text != ")":
            raise self.unexpected(token, '"," or ")"')
        return tuple(values)

    def value(self, kind: Kind) -> Value:
        token = self.next("a quoted value")
        if token.kind != "string":
            raise self.unexpected(token, "a quoted value")
        text = re.sub(r"\\(.)", r"\1", token.text[1:-1], flags=re.DOTALL)
        return parse_value(kind, text, self.tz)

    def order_list(self) -> tuple[tuple[str, bool], ...]:
        items: list[tuple[str, bool]] = []
        while True:
            name, _ = self.field()
            direction = self.keyword("ASC", "DESC")
            items.append((name, direction == "DESC"))
            token = self.peek()
            if token is None or token.text != ",":
                return tuple(items)
            self.index += 1

    def integer(self, keyword: str) -> int:
        token = self.next(f"a number after {keyword}")
        text = token.text[1:-1] if token.kind == "string" else token.text
        if token.kind not in ("number", "string") or not text.isdigit():
            raise self.unexpected(token, f"a number after {keyword}")
        value = int(text)
        if value < 1:
            raise QueryError(f"QueryValidationError: {keyword} must be at least 1")
        return value


def parse_value(kind: Kind, text: str, tz: tzinfo) -> Value:
    """A quoted literal as the field's kind; a malformed one raises QueryError."""
    try:
        if kind is Kind.STRING:
            return text
        if kind is Kind.ID:
            if not text.isdigit():
                raise ValueError(text)
            return int(text)
        if kind is Kind.MONEY:
            amount = Decimal(text.strip())
            if not amount.is_finite():
                raise ValueError(text)
            return amount
        if kind is Kind.DATE:
            return date.fromisoformat(text.strip()[:10])
        return parse_datetime(text, tz)
    except (ValueError, InvalidOperation):
        raise QueryError(
            f"QueryValidationError: value '{text[:40]}' is not a valid {kind.value}"
        ) from None


def parse_datetime(text: str, tz: tzinfo) -> datetime:
    """ISO 8601 with an offset or Z; a bare date or naive time is read in ``tz``."""
    text = text.strip()
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), time(), tz)
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)


def parse_query(text: str, *, tz: tzinfo) -> Query:
    """Parse one statement. Raises QueryError, and nothing else, for any malformed input."""
    try:
        return _Parser(text, tz).parse()
    except QueryError:
        raise
    except (ValueError, TypeError, ArithmeticError, IndexError, RecursionError) as exc:
        raise QueryError(f"QueryParserError: {type(exc).__name__}") from None
