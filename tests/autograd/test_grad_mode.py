"""no_grad / enable_grad / set_grad_enabled as context managers and decorators."""

from __future__ import annotations

import filterbank as fb


def _record():
    return (fb.ones(1, requires_grad=True) * 2).requires_grad


def test_no_grad_context_nests_with_enable_grad():
    assert _record()
    with fb.no_grad():
        assert not _record() and not fb.is_grad_enabled()
        with fb.enable_grad():
            assert _record()
        assert not _record()
    assert _record() and fb.is_grad_enabled()


def test_no_grad_decorator_with_and_without_parentheses():
    @fb.no_grad()
    def f():
        return _record()

    @fb.no_grad
    def g():
        return _record()

    assert not f() and not g() and _record()
    assert f.__name__ == "f" and g.__name__ == "g"


def test_no_grad_restores_the_mode_after_an_exception():
    try:
        with fb.no_grad():
            raise KeyError("boom")
    except KeyError:
        pass
    assert fb.is_grad_enabled()


def test_set_grad_enabled_switches_at_once_and_restores_as_a_context():
    with fb.set_grad_enabled(False):
        assert not _record()
    assert _record()
    fb.set_grad_enabled(False)  # a plain call, as torch.set_grad_enabled
    try:
        assert not _record()
    finally:
        fb.set_grad_enabled(True)
    assert _record()


def test_set_grad_enabled_as_decorator():
    @fb.set_grad_enabled(False)
    def f():
        return _record()

    assert fb.is_grad_enabled()  # decorating does not change the mode
    assert not f() and _record()


def test_reusing_one_no_grad_instance_is_safe():
    ng = fb.no_grad()
    with ng:
        with ng:
            assert not fb.is_grad_enabled()
        assert not fb.is_grad_enabled()
    assert fb.is_grad_enabled()


# ------------------------------------------------------------ inference_mode (issue 10)
def test_inference_mode_context_turns_recording_off_and_restores_it():
    assert _record()
    with fb.inference_mode():
        assert not _record() and not fb.is_grad_enabled()
        with fb.enable_grad():
            assert _record()
        assert not _record()
    assert _record()


def test_inference_mode_false_keeps_the_current_mode():
    with fb.inference_mode(False):
        assert _record()
    with fb.no_grad():
        with fb.inference_mode(False):
            assert not _record()  # it does not switch recording back on
    assert _record()


def test_inference_mode_as_decorator_with_and_without_parentheses():
    @fb.inference_mode
    def bare():
        return _record()

    @fb.inference_mode()
    def called():
        return _record()

    @fb.inference_mode(mode=False)
    def off():
        return _record()

    assert bare() is False and called() is False and off() is True
    assert _record()
    assert bare.__name__ == "bare"


def test_inference_mode_restores_after_an_exception():
    try:
        with fb.inference_mode():
            raise KeyError("boom")
    except KeyError:
        pass
    assert _record()


def test_inference_mode_rejects_a_non_bool_mode():
    import pytest

    with pytest.raises(TypeError, match=r"inference_mode: expected mode to be a bool, got str"):
        fb.inference_mode("yes")
