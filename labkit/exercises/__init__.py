"""Exercises with ``check()``, ``hint()`` and ``solution()``, in the spirit of Kaggle's learntools.

In a notebook::

    ex = labkit.exercises.load("01_dataset_types")
    def episode_returns(rewards, episode):
        return ____            # replace ____ with your code
    ex.q2.check(episode_returns)

Where the answer is a piece of a model that later cells train (a loss, a penalty), the notebook
hands it on with ``fn = ex.q1.use(my_fn, "generator loss")``: the learner's function when it
passes, the reference otherwise (and one printed line says which). An untouched exercise (still ``____``) reports "not attempted" instead of failing, so a notebook
runs top to bottom before the student has written anything. Each notebook's exercises live in
``labkit/exercises/nbNN.py`` as a list ``EXERCISES``.
"""
from __future__ import annotations

import html
import importlib
from dataclasses import dataclass
from typing import Any, Callable


class _Blank:
    """The placeholder a student replaces. Any arithmetic on it stays blank."""

    def __repr__(self):
        return "____"

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self

    def __call__(self, *args, **kwargs):
        return self

    def _same(self, *args):
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _same
    __truediv__ = __rtruediv__ = __getitem__ = __neg__ = _same


____ = _Blank()


class Incorrect(AssertionError):
    """Raised by a checker with a message that teaches without giving the answer away."""


def is_blank(value) -> bool:
    """Whether ``value`` is (or still contains at top level) the ``____`` placeholder."""
    if isinstance(value, _Blank):
        return True
    if isinstance(value, (list, tuple, set)):
        return any(isinstance(v, _Blank) for v in value)
    if isinstance(value, dict):
        return any(isinstance(v, _Blank) for v in value.values())
    return False


@dataclass
class CheckResult:
    """The outcome of ``check()``: status is "correct", "incorrect" or "not attempted"."""

    exercise: str
    status: str
    message: str

    _COLOURS = {"correct": "#1b7f3b", "incorrect": "#b3261e", "not attempted": "#8a6d00"}

    def _repr_html_(self):
        colour = self._COLOURS[self.status]
        return (f'<div style="border-left:4px solid {colour};padding:2px 8px">'
                f'<b style="color:{colour}">{self.exercise}: {self.status}</b>'
                f'{" — " + html.escape(self.message) if self.message else ""}</div>')

    def __repr__(self):
        return f"{self.exercise}: {self.status}" + (f" — {self.message}" if self.message else "")

    def __bool__(self):
        return self.status == "correct"


@dataclass
class Exercise:
    """One exercise: a checker that raises :class:`Incorrect`, hints, and a reference solution.

    ``reference`` is the reference answer (a value or a function) and ``solution_code`` the code a
    student would write; tests assert that ``check(reference)`` is correct.
    """

    name: str
    prompt: str
    checker: Callable[[Any], None]
    hints: tuple
    solution_code: str
    reference: Any

    def check(self, answer) -> CheckResult:
        """Check an answer; never raises, so a notebook keeps running."""
        if is_blank(answer):
            return CheckResult(self.name, "not attempted", "replace ____ with your answer, then run again")
        try:
            self.checker(answer)
        except _BlankResult:
            return CheckResult(self.name, "not attempted", "your function still returns ____")
        except NotImplementedError:
            return CheckResult(self.name, "not attempted", "write your code where the placeholder is")
        except Incorrect as err:
            return CheckResult(self.name, "incorrect", str(err))
        except Exception as err:  # noqa: BLE001 - a student's code may raise anything
            return CheckResult(self.name, "incorrect", f"your code raised {type(err).__name__}: {err}")
        return CheckResult(self.name, "correct", "")

    def use(self, answer, what: str = "function"):
        """What the next cells train with: ``answer`` when it passes :meth:`check`, else the reference.

        Prints the check's outcome and, in one line, which of the two is used, e.g.
        ``fn = ex.q1.use(generator_loss, "generator loss")``.
        """
        result = self.check(answer)
        print(repr(result))
        if result:
            print(f"-> the next cells use your {what}")
            return answer
        print(f"-> the next cells use the reference {what} (yours is {result.status})")
        return self.reference

    def hint(self, level: int = 1) -> str:
        """Hint number ``level`` (1 = gentlest)."""
        from IPython.display import Markdown, display

        text = self.hints[min(max(level, 1), len(self.hints)) - 1]
        display(Markdown(f"**Hint {min(level, len(self.hints))}/{len(self.hints)}:** {text}"))
        return text

    def solution(self) -> str:
        """Show the reference solution (unless this is a student edition)."""
        from IPython.display import Markdown, display

        if _SOLUTIONS_HIDDEN:
            display(Markdown(f"*{self.name}: solutions are hidden in the student edition; "
                             "try `hint()`, or ask your teacher.*"))
            return ""
        display(Markdown(f"**Solution ({self.name}):**\n```python\n{self.solution_code.strip()}\n```"))
        return self.solution_code

    def _repr_markdown_(self):
        return f"**{self.name}.** {self.prompt}"


_SOLUTIONS_HIDDEN = False


def hide_solutions(hidden: bool = True) -> None:
    """Make ``solution()`` decline to show answers (student editions call this)."""
    global _SOLUTIONS_HIDDEN
    _SOLUTIONS_HIDDEN = hidden


class _BlankResult(Exception):
    pass


def call(function, *args):
    """Call a student's function; a ``____`` result means "not attempted"."""
    result = function(*args)
    if is_blank(result):
        raise _BlankResult
    return result


class ExerciseSet:
    """The exercises of one notebook, reachable as attributes (``ex.q1``)."""

    def __init__(self, exercises):
        self._items = {e.name: e for e in exercises}

    def __getattr__(self, name):
        try:
            return self._items[name]
        except KeyError:
            raise AttributeError(f"no exercise {name!r}; have {', '.join(self._items)}") from None

    def __iter__(self):
        return iter(self._items.values())

    def __len__(self):
        return len(self._items)


def load(notebook: str) -> ExerciseSet:
    """The exercises of a notebook, by stem (``"01_dataset_types"``) or number (``"01"``)."""
    number = str(notebook)[:2]
    module = importlib.import_module(f"labkit.exercises.nb{number}")
    return ExerciseSet(module.EXERCISES)
