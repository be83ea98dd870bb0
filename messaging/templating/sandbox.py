"""The Jinja2 sandbox message templates run in, with limits on what one render may cost.

Templates are written by marketers and rendered by workers for every recipient, so a template
may be neither a way out of the sandbox nor a way to stall or exhaust a worker. On top of
Jinja2's `ImmutableSandboxedEnvironment` (no private attributes, no mutation of lists or dicts):

- attributes are an allow-list per type (plain data only: str, dict, list, numbers, dates and
  Jinja's own helpers); `str.format` / `format_map` are refused however they are reached;
- a render has a budget (`Budget`): a deadline checked on every call, filter and loop
  iteration, a cap on everything it produces (including captured blocks and macro bodies), a
  cap on call depth, and `range` refuses more than `MAX_RANGE` numbers;
- operators and filters that can multiply memory (`*`, `**`, `%` on strings, `center`,
  `indent`, `join`, `replace`, `tojson(indent)`...) check their result's size before
  building it.

Loops and `~` concatenation are not hookable in Jinja2's generated code, so the parsed
template is rewritten: each loop iterates through `_masivo_loop` and each `{{ ... }}` passes
through `_masivo_out`, both of which spend the budget.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date
from datetime import time as time_of_day
from functools import lru_cache, wraps

from jinja2 import ChainableUndefined, nodes, pass_environment, pass_eval_context
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.runtime import Context, LoopContext, Macro, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Cycler, Joiner, Namespace
from jinja2.visitor import NodeTransformer

MAX_OUTPUT = 256 * 1024  # characters per field
MAX_PRODUCED = 4 * MAX_OUTPUT  # everything a field's render builds, captured blocks included
MAX_SECONDS = 1.0  # per field
MAX_RANGE = 10_000
MAX_CALL_DEPTH = 40
MAX_INT_BITS = 256
MAX_FORMAT_WIDTH = 100


class LimitExceeded(SecurityError):
    """A render went over one of its limits; the message says which, for a marketer."""


@dataclass
class Budget:
    """What one field's render may still spend. `clock` is injectable so tests drive time."""

    seconds: float = MAX_SECONDS
    max_output: int = MAX_OUTPUT
    max_produced: int = MAX_PRODUCED
    clock: Callable[[], float] = time.monotonic
    deadline: float = field(init=False, default=0.0)
    produced: int = field(init=False, default=0)
    depth: int = field(init=False, default=0)

    def start(self) -> Budget:
        self.deadline = self.clock() + self.seconds
        self.produced = 0
        self.depth = 0
        return self

    def tick(self) -> None:
        if self.clock() > self.deadline:
            raise LimitExceeded(f"rendering took longer than {self.seconds:g} s")

    def spend(self, characters: int) -> None:
        self.produced += characters
        if self.produced > self.max_produced:
            raise LimitExceeded(
                f"rendering produced more than {self.max_produced // 1024} KB of text"
            )

    def check_size(self, size: int) -> None:
        if size > self.max_output:
            raise LimitExceeded(f"a text would be longer than {self.max_output // 1024} KB")


_BUDGET: ContextVar[Budget | None] = ContextVar("masivo_template_budget", default=None)


def _budget() -> Budget:
    budget = _BUDGET.get()
    # Outside render_stream (a template rendered directly): fresh default limits.
    return budget if budget is not None else Budget().start()


def render_stream(template, context: dict, budget: Budget) -> str:
    """Render `template` within `budget`, streaming so a huge output stops early."""
    token = _BUDGET.set(budget.start())
    try:
        parts, size = [], 0
        for chunk in template.generate(context):
            size += len(chunk)
            if size > budget.max_output:
                raise LimitExceeded(f"the result is longer than {budget.max_output // 1024} KB")
            budget.tick()
            parts.append(chunk)
        return "".join(parts)
    finally:
        _BUDGET.reset(token)


class EmptyUndefined(ChainableUndefined):
    """A missing variable (or a missing key of one) renders as nothing; `default` replaces
    it. Calling one, or doing arithmetic with it, is still an error."""

    __slots__ = ()


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STR_ATTRIBUTES = _names(
    "capitalize casefold count endswith find isalnum isalpha isdecimal isdigit islower "
    "isnumeric isspace istitle isupper join lower lstrip partition removeprefix removesuffix "
    "replace rfind rpartition rsplit rstrip split splitlines startswith strip swapcase title "
    "upper escape striptags unescape"
)
_DICT_ATTRIBUTES = frozenset({"get", "items", "keys", "values"})
_SEQUENCE_ATTRIBUTES = frozenset({"count", "index"})
_DATE_ATTRIBUTES = _names(
    "year month day hour minute second microsecond tzinfo weekday isoweekday isoformat "
    "strftime date time"
)
_CYCLER_ATTRIBUTES = frozenset({"current", "next", "reset"})
# Jinja's own objects whose public attributes are for templates.
_OPEN_TYPES = (ChainableUndefined, Namespace, LoopContext, Macro)


def _check_join(separator: str, items: list) -> None:
    size = sum(len(str(item)) for item in items) + len(separator) * max(len(items) - 1, 0)
    _budget().check_size(size)


def _check_replace(text: str, old: str, new: str, count: int = -1) -> None:
    occurrences = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        occurrences = min(occurrences, count)
    _budget().check_size(len(text) + occurrences * (len(new) - len(old)))


# `%` directives: flags, then a width and precision that may not be `*` or huge.
_PERCENT_DIRECTIVE = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_percent_format(text: str) -> None:
    for width, precision in _PERCENT_DIRECTIVE.findall(text):
        for number in (width, precision):
            if number == "*" or (number and int(number) > MAX_FORMAT_WIDTH):
                raise SecurityError(f"a format width over {MAX_FORMAT_WIDTH} is not allowed")


def _sized(value) -> int | None:
    return len(value) if isinstance(value, (str, list, tuple)) else None


def _multiply(left, right):
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise LimitExceeded("a multiplication of numbers that are too large")
        return left * right
    for sequence, times in ((left, right), (right, left)):
        length = _sized(sequence)
        if length is not None and isinstance(times, int):
            _budget().check_size(length * max(times, 0))
    return left * right


def _power(left, right):
    if isinstance(right, int) and isinstance(left, int):
        if right > 0 and abs(left) > 1 and left.bit_length() * right > MAX_INT_BITS:
            raise LimitExceeded("a number raised to a power that is too large")
    elif isinstance(right, (int, float)) and abs(right) > 1000:
        raise LimitExceeded("a number raised to a power that is too large")
    return left**right


def _add(left, right):
    left_size, right_size = _sized(left), _sized(right)
    if left_size is not None and right_size is not None:
        _budget().check_size(left_size + right_size)
    return left + right


def _modulo(left, right):
    if isinstance(left, str):
        _check_percent_format(left)
    return left % right


class LimitedEnvironment(ImmutableSandboxedEnvironment):
    """The environment every message template is compiled in (see the module docstring)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    _BINOPS = {"*": _multiply, "**": _power, "+": _add, "%": _modulo}

    def __init__(self, *, autoescape: bool):
        super().__init__(
            autoescape=autoescape,
            undefined=EmptyUndefined,
            finalize=_finalize,
            auto_reload=False,
            cache_size=0,
        )
        self.globals = {
            "range": _limited_range,
            "dict": dict,
            "cycler": Cycler,
            "joiner": Joiner,
            "namespace": Namespace,
        }
        self.filters = _limited_filters(self.filters)
        self.tests = {name: _with_deadline(test) for name, test in self.tests.items()}

    def is_safe_attribute(self, obj, attr, value) -> bool:
        if not super().is_safe_attribute(obj, attr, value):
            return False
        if isinstance(obj, str):
            return attr in _STR_ATTRIBUTES
        if isinstance(obj, dict):
            return attr in _DICT_ATTRIBUTES
        if isinstance(obj, (list, tuple)):
            return attr in _SEQUENCE_ATTRIBUTES
        if isinstance(obj, (date, time_of_day)):
            return attr in _DATE_ATTRIBUTES
        if isinstance(obj, Cycler):
            return attr in _CYCLER_ATTRIBUTES
        return isinstance(obj, _OPEN_TYPES)

    def unsafe_undefined(self, obj, attribute):
        raise SecurityError(f"'{attribute}' is not available in templates")

    def wrap_str_format(self, value):
        return None  # str.format is refused (is_safe_attribute), never wrapped and allowed

    def call_binop(self, context, operator, left, right):
        _budget().tick()
        return self._BINOPS[operator](left, right)

    def call(__self, __context: Context, __obj, *args, **kwargs):
        budget = _budget()
        budget.tick()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            name = getattr(__obj, "__name__", "")
            if name == "join" and args:
                _check_join(owner, list(args[0]))
            elif name == "replace" and len(args) >= 2:
                _check_replace(owner, *args[:3])
        if budget.depth >= MAX_CALL_DEPTH:
            raise LimitExceeded("calls nest too deeply (does a macro call itself?)")
        budget.depth += 1
        try:
            return super().call(__context, __obj, *args, **kwargs)
        finally:
            budget.depth -= 1

    def _parse(self, source, name, filename):
        return _Guard().visit(super()._parse(source, name, filename))


def _finalize(value):
    return "" if value is None else value


class _Guard(NodeTransformer):
    """Routes every loop and every output expression through a budget-spending filter, and
    refuses what needs other templates (there is no loader: each field stands alone)."""

    def _refuse(self, node):
        raise TemplateSyntaxError(
            "a template cannot include, import or extend other templates", node.lineno
        )

    visit_Include = visit_Import = visit_FromImport = visit_Extends = _refuse

    def visit_For(self, node: nodes.For):
        node = self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, "_masivo_loop", [], [], None, None, lineno=node.lineno)
        return node

    def visit_Output(self, node: nodes.Output):
        node = self.generic_visit(node)
        node.nodes = [
            child
            if isinstance(child, nodes.TemplateData)
            else nodes.Filter(child, "_masivo_out", [], [], None, None, lineno=child.lineno)
            for child in node.nodes
        ]
        return node

    def visit_Concat(self, node: nodes.Concat):
        node = self.generic_visit(node)
        return nodes.Filter(
            nodes.List(node.nodes, lineno=node.lineno),
            "_masivo_concat",
            [],
            [],
            None,
            None,
            lineno=node.lineno,
        )


def _loop(iterable: Iterable):
    budget = _budget()
    for item in iterable:
        budget.tick()
        yield item


def _out(value):
    budget = _budget()
    budget.tick()
    if isinstance(value, str):
        budget.spend(len(value))
    elif value is not None and not isinstance(value, ChainableUndefined):
        budget.spend(len(str(value)))
    return value


@pass_eval_context
def _concat(eval_context, items: list):
    texts = [str(item) for item in items]
    _budget().check_size(sum(len(text) for text in texts))
    return markup_join(items) if eval_context.autoescape else str_join(texts)


def _limited_range(*args):
    budget = _budget()
    budget.tick()
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise LimitExceeded(f"range() of more than {MAX_RANGE:,} numbers is not allowed")
    return numbers


def _with_deadline(function):
    @wraps(function)
    def guarded(*args, **kwargs):
        _budget().tick()
        return function(*args, **kwargs)

    return guarded


def _limit_argument(function, *, filter_name: str, name: str, position: int, limit: int):
    """`function` with its argument `name` (or the positional one at `position`) capped."""

    @wraps(function)
    def limited(*args, **kwargs):
        value = kwargs.get(name, args[position] if len(args) > position else None)
        if isinstance(value, (int, float)) and value > limit:
            raise SecurityError(f"{filter_name}: a {name} over {limit:,} is not allowed")
        return function(*args, **kwargs)

    return limited


def _limited_filters(builtin: dict) -> dict:
    """Jinja's filters minus `pprint` (prints object internals) and `slice` (its work grows with
    its argument, not its input), each checked against the deadline, the
    multiplying ones size-checked first."""
    filters = {name: f for name, f in builtin.items() if name not in {"pprint", "slice"}}

    def join(eval_context, value, d="", attribute=None):
        items = list(value)
        _check_join(str(d), items)
        return builtin["join"](eval_context, items, d, attribute)

    join = pass_eval_context(join)

    def replace(eval_context, value, old, new, count=None):
        _check_replace(str(value), str(old), str(new), -1 if count is None else count)
        return builtin["replace"](eval_context, value, old, new, count)

    replace = pass_eval_context(replace)

    def format_(value, *args, **kwargs):
        _check_percent_format(str(value))
        return builtin["format"](value, *args, **kwargs)

    def wordwrap(environment, value, width=79, break_long_words=True, wrapstring=None, **rest):
        if wrapstring is not None and len(str(wrapstring)) > 10:
            raise SecurityError("wordwrap: a wrapstring over 10 characters is not allowed")
        return builtin["wordwrap"](environment, value, width, break_long_words, wrapstring, **rest)

    wordwrap = pass_environment(wordwrap)

    filters.update(
        join=join,
        replace=replace,
        format=format_,
        wordwrap=wordwrap,
    )
    for filter_name, name, position, limit in (
        ("center", "width", 1, 1000),
        ("indent", "width", 1, 100),
        ("batch", "linecount", 1, MAX_RANGE),
        ("tojson", "indent", 2, 8),
        ("truncate", "length", 2, MAX_OUTPUT),
    ):
        filters[filter_name] = _limit_argument(
            builtin[filter_name], filter_name=filter_name, name=name, position=position, limit=limit
        )
    # `wraps` keeps Jinja's `jinja_pass_arg` mark, so each guarded filter is called as before.
    guarded = {name: _with_deadline(f) for name, f in filters.items()}
    guarded.update(_masivo_loop=_loop, _masivo_out=_out, _masivo_concat=_concat)
    return guarded


_ENVIRONMENTS = {
    False: LimitedEnvironment(autoescape=False),
    True: LimitedEnvironment(autoescape=True),
}


@lru_cache(maxsize=4096)
def compiled(source: str, *, autoescape: bool = False):
    """The compiled template for `source` (cached: the same text renders for every recipient).
    Raises jinja2.TemplateSyntaxError for text that does not compile."""
    return _ENVIRONMENTS[autoescape].from_string(source)
