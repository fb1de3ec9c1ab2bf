"""Every exercise of every notebook: the reference passes, a blank is "not attempted"."""
import importlib
import pkgutil

import pytest

import labkit.exercises as exercises
from labkit.exercises import ____, Exercise, Incorrect, call

MODULES = sorted(m.name for m in pkgutil.iter_modules(exercises.__path__) if m.name.startswith("nb"))
ALL = [(m, e) for m in MODULES for e in importlib.import_module(f"labkit.exercises.{m}").EXERCISES]


@pytest.mark.parametrize("module, exercise", ALL, ids=[f"{m}.{e.name}" for m, e in ALL])
def test_reference_passes_and_blank_is_not_attempted(module, exercise):
    assert exercise.check(exercise.reference).status == "correct", exercise.check(exercise.reference)
    assert exercise.check(____).status == "not attempted"
    if callable(exercise.reference):
        assert exercise.check(lambda *args: ____).status == "not attempted"
    assert exercise.hints and exercise.solution_code.strip()


def test_wrong_answers_are_incorrect_without_raising():
    from labkit.exercises import nb02

    leaky = lambda train, test: ((train - train.mean(0)) / train.std(0), (test - test.mean(0)) / test.std(0))
    result = nb02.EXERCISES[1].check(leaky)
    assert result.status == "incorrect" and "leaks" in result.message
    crashing = nb02.EXERCISES[0].check(lambda frame: 1 / 0)
    assert crashing.status == "incorrect" and "ZeroDivisionError" in crashing.message


def test_result_renders_and_load_by_stem():
    ex = exercises.load("01_dataset_types")
    assert len(ex) == 3 and ex.q1.name == "q1"
    assert "not attempted" in ex.q1.check(____)._repr_html_()
    with pytest.raises(AttributeError, match="no exercise"):
        ex.q9


def test_blank_propagates_through_arithmetic():
    assert exercises.is_blank(____ + 1) and exercises.is_blank(____.mean()) and exercises.is_blank([1, ____])


def test_checker_message_is_shown():
    def checker(answer):
        raise Incorrect("think again")
    e = Exercise("qx", "p", checker, ("h",), "s", 1)
    assert e.check(2).message == "think again"
    assert call(lambda: 3) == 3


def test_use_hands_on_the_learners_function_only_when_it_passes(capsys):
    def reference(x):
        return x + 1

    def checker(fn):
        if call(fn, 1) != 2:
            raise Incorrect("not x + 1")

    ex = Exercise("q9", "add one", checker, ("hint",), "return x + 1", reference)

    def mine(x):
        return 1 + x

    def wrong(x):
        return x

    def blank(x):
        return ____

    assert ex.use(mine, "adder") is mine
    assert "your adder" in capsys.readouterr().out
    assert ex.use(wrong, "adder") is reference
    assert "reference adder (yours is incorrect)" in capsys.readouterr().out
    assert ex.use(blank, "adder") is reference
    assert "not attempted" in capsys.readouterr().out
