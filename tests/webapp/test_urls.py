import pytest

from webapp.urls import safe_next


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/operators/?page=2", "/operators/?page=2"),
        ("/", "/"),
        (None, None),
        ("", None),
        ("operators", None),
        ("https://evil.example/", None),
        ("//evil.example/", None),
        ("/\\evil.example", None),
        ("javascript:alert(1)", None),
    ],
)
def test_safe_next(target, expected):
    assert safe_next(target) == expected
