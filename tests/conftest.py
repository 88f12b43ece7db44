"""What long-running property tests ran (budget and seed), printed at the end of every run."""


def pytest_terminal_summary(terminalreporter):
    import sys

    module = sys.modules.get("test_reuse_property")
    for line in getattr(module, "RUNS", []):
        terminalreporter.write_line(line)
