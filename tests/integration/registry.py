"""The list of integration tests, filled by the @test decorator in test_*.py.

Every test declares the backends it runs on (run.py --backend picks one per
run). The default is both: the API contract is one, whatever the store. A
test that is inherently one backend's says which, and why, in one line:

    @test                                    # sqlite and postgresql
    def cancel_semantics(env): ...

    @test(only="sqlite", why="restores from the SQLite file after a restart")
    def restart_keeps_done_running_and_cancelled_jobs(env): ...

A module whose every test is one backend's (the PostgreSQL cluster suites,
the command line) says so once, before its first test:

    registry.module_backends(__name__, only="postgresql", why="several workers on one database")
"""

BACKENDS = ("sqlite", "postgresql")

TESTS = []
_module_default = {}  # module name -> (backends, why)


class Test:
    def __init__(self, name, func, backends, why):
        self.name = name
        self.func = func
        self.backends = backends  # a tuple, a subset of BACKENDS
        self.why = why            # None when it runs on both

    def runs_on(self, backend):
        return backend in self.backends


def _backends(only, why, where):
    if only is None:
        return BACKENDS
    if only not in BACKENDS:
        raise ValueError("%s: only=%r is not one of %s" % (where, only, BACKENDS))
    if not why:
        raise ValueError("%s: a test that runs on %s only must say why" % (where, only))
    return (only,)


def module_backends(module, only, why):
    """Every test registered from `module` after this call runs on `only`."""
    _module_default[module] = (_backends(only, why, module), why)


def test(func=None, *, only=None, why=None):
    """Registers func(env) as a test named after the function; order is
    definition order, so cheap tests run first and destructive ones last.
    Bare (@test) it runs on both backends, or on its module's declared one;
    @test(only=BACKEND, why=REASON) on one."""
    def register(f):
        if only is not None:
            backends, reason = _backends(only, why, f.__name__), why
        else:
            backends, reason = _module_default.get(f.__module__, (BACKENDS, None))
        TESTS.append(Test(f.__name__, f, backends, reason))
        return f
    return register(func) if func is not None else register
