"""Experiments behind ``qverify reproduce``: scenario runs, the report and its figures."""
