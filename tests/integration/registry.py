"""The list of integration tests, filled by the @test decorator in test_*.py."""

TESTS = []


class Test:
    def __init__(self, name, func):
        self.name = name
        self.func = func


def test(func):
    """Registers func(env) as a test named after the function; order is
    definition order, so cheap tests run first and destructive ones last."""
    TESTS.append(Test(func.__name__, func))
    return func
